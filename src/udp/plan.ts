/**
 * Plans a batch of outgoing datagrams into sendmmsg(2) messages, each either
 * one datagram or a UDP_SEGMENT (GSO) run, without touching the data.
 *
 * A GSO run is consecutive datagrams to the same destination, all of one size
 * except the last, which may be shorter (the kernel cuts the gathered payload
 * every `gso_size` bytes: udp(7) UDP_SEGMENT, net/ipv4/udp.c udp_send_skb).
 * Pure: no Node APIs, no I/O.
 * @module
 */
import type { UdpEndpoint } from './address.js';

/**
 * Segments per UDP_SEGMENT send: include/linux/udp.h UDP_MAX_SEGMENTS is
 * (1 << 6) from Linux 4.18 (later kernels allow 128; 64 is valid on all).
 */
export const UDP_MAX_SEGMENTS = 64;
/**
 * Payload bytes per UDP_SEGMENT send: one IPv4 datagram's limit, 65535 - 20
 * (IP header) - 8 (UDP header); udp_send_skb refuses more than
 * gso_size * UDP_MAX_SEGMENTS, ip_append_data more than 0xFFFF in total.
 */
export const UDP_GSO_MAX_BYTES = 65507;
/** Largest UDP payload over IPv4: 65535 - 20 (IP header) - 8 (UDP header). */
export const UDP_MAX_PAYLOAD_V4 = 65507;
/** Largest UDP payload over IPv6 without jumbograms: 65535 (payload length field) - 8 (UDP header). */
export const UDP_MAX_PAYLOAD_V6 = 65527;
/** Ints per message in {@link SendPlan.plan}: first datagram, datagram count, segment size (0 = no GSO). */
export const PLAN_STRIDE = 3;

/** Messages of one batch, in the layout native udpSend takes. */
export class SendPlan {
  /** `[first, count, segmentSize]` per message; grows as needed. */
  plan = new Int32Array(new ArrayBuffer(4 * PLAN_STRIDE * 256));
  /** Messages planned. */
  messages = 0;
  /** Per-message destination sockaddrs (only filled when the batch has per-datagram destinations). */
  readonly addresses: Uint8Array[] = [];

  /** Empties the plan (keeps its memory). */
  reset(): void {
    this.messages = 0;
    this.addresses.length = 0;
  }

  /** Appends one message. */
  push(first: number, count: number, segmentSize: number): void {
    const at = this.messages * PLAN_STRIDE;
    if (at + PLAN_STRIDE > this.plan.length) {
      // Off-heap (ArrayBuffer-backed) so the addon can take it without V8 moving it.
      const grown = new Int32Array(new ArrayBuffer(8 * this.plan.length));
      grown.set(this.plan);
      this.plan = grown;
    }
    this.plan[at] = first;
    this.plan[at + 1] = count;
    this.plan[at + 2] = segmentSize;
    this.messages++;
  }
}

/** Limits of one planning pass. */
export interface PlanLimits {
  /** Datagrams per GSO message; 1 = no GSO (capability off or forced off). */
  maxSegments: number;
  /** Largest segment size a GSO message may use (the kernel refuses segments above the path MTU). */
  maxSegmentSize: number;
}

/**
 * Plans `datagrams[from ..]` into `out` (appending). `destinations`: one per
 * datagram, or undefined when all go to the same place. `skip[i] = 1` leaves
 * datagram i out (it was rejected before planning); a skipped datagram ends
 * a run, because a message's buffers are consecutive.
 */
export function planSend(
  datagrams: readonly Uint8Array[],
  destinations: readonly UdpEndpoint[] | undefined,
  skip: Uint8Array | undefined,
  from: number,
  limits: PlanLimits,
  out: SendPlan,
): void {
  const n = datagrams.length;
  const maxSegments = Math.min(limits.maxSegments, UDP_MAX_SEGMENTS);
  let i = from;
  while (i < n) {
    if (skip !== undefined && skip[i] === 1) {
      i++;
      continue;
    }
    const size = datagrams[i]!.length;
    let count = 1;
    if (maxSegments > 1 && size > 0 && size <= limits.maxSegmentSize) {
      const dest = destinations?.[i];
      let total = size;
      for (let j = i + 1; j < n && count < maxSegments; j++) {
        if (skip !== undefined && skip[j] === 1) break;
        if (dest !== undefined) {
          const d = destinations![j]!;
          if (d !== dest && d.key !== dest.key) break;
        }
        const l = datagrams[j]!.length;
        if (l > size || l === 0 || total + l > UDP_GSO_MAX_BYTES) break;
        count++;
        total += l;
        if (l < size) break; // only the last segment may be shorter
      }
    }
    out.push(i, count, count > 1 ? size : 0);
    if (destinations !== undefined) out.addresses.push(destinations[i]!.sockaddr);
    i += count;
  }
}
