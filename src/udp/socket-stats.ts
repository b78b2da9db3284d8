/**
 * The counters of a {@link UdpSocket}: their shape, a fresh set, and snapshots.
 * @module
 */

/** Counters of one socket (snapshot). */
export interface UdpStats {
  /** Datagrams the kernel accepted for sending. */
  datagramsSent: number;
  /** Their payload bytes. */
  bytesSent: number;
  /** sendmmsg calls that sent at least one message. */
  sendCalls: number;
  /** Messages (mmsghdr entries) sent; a GSO message carries several datagrams. */
  sendMessages: number;
  /** Messages sent with UDP_SEGMENT. */
  gsoSends: number;
  /** Datagrams inside those. */
  gsoSegments: number;
  /** Times GSO was turned off after EIO. */
  gsoFallbacks: number;
  /** GSO messages refused with EINVAL/EMSGSIZE and resent one datagram at a time. */
  gsoSplits: number;
  /** Times a send waited for writability (EAGAIN). */
  sendWaits: number;
  /** Datagrams not sent, by error code. */
  sendFailures: Record<string, number>;
  /** Datagrams delivered to the caller. */
  datagramsReceived: number;
  /** Their payload bytes. */
  bytesReceived: number;
  /** recvmmsg calls that returned data. */
  receiveCalls: number;
  /** Messages received (a GRO message holds several datagrams). */
  receiveMessages: number;
  /** Received messages the kernel had coalesced (UDP_GRO, more than one datagram). */
  groReceives: number;
  /** Datagrams inside those. */
  groSegments: number;
  /** Datagrams the kernel dropped for this socket (full receive buffer), from SO_RXQ_OVFL; as of the last receive. */
  receiveDrops: number;
  /** ICMP errors (ERR_UDP_CONNECTION_REFUSED, ...) a receive call reported for earlier sends, by code; reads go on. */
  receiveErrors: Record<string, number>;
  /** Messages discarded because they did not fit a slot (MSG_TRUNC; cannot happen with 64 KiB slots). */
  truncated: number;
  /** datagramsSent / sendCalls. */
  segmentsPerSendCall: number;
  /** datagramsReceived / receiveCalls. */
  segmentsPerReceiveCall: number;
}

/** The live counters: {@link UdpStats} without the ratios a snapshot derives. */
export type UdpCounters = Omit<UdpStats, 'segmentsPerSendCall' | 'segmentsPerReceiveCall'>;

export function emptyStats(): UdpCounters {
  return {
    datagramsSent: 0, bytesSent: 0, sendCalls: 0, sendMessages: 0, gsoSends: 0, gsoSegments: 0, gsoFallbacks: 0,
    gsoSplits: 0, sendWaits: 0, sendFailures: {}, datagramsReceived: 0, bytesReceived: 0, receiveCalls: 0,
    receiveMessages: 0, groReceives: 0, groSegments: 0, receiveDrops: 0, receiveErrors: {}, truncated: 0,
  };
}

/** A copy the caller may keep (the live counters go on changing), with the ratios. */
export function snapshotStats(s: UdpCounters): UdpStats {
  return {
    ...s,
    sendFailures: { ...s.sendFailures },
    receiveErrors: { ...s.receiveErrors },
    segmentsPerSendCall: s.sendCalls === 0 ? 0 : s.datagramsSent / s.sendCalls,
    segmentsPerReceiveCall: s.receiveCalls === 0 ? 0 : s.datagramsReceived / s.receiveCalls,
  };
}
