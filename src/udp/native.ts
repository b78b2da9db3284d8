/**
 * The UDP half of the native addon (native/udp.c) as TypeScript sees it.
 *
 * Same conventions as src/device/native.ts: syscall-shaped functions that
 * return `>= 0` or `-errno`, no policy. The poller and `close` are the shared
 * ones (native/poll.c, native/tun.c). Injectable: `UdpSocket.open({ binding })`
 * takes a fake for tests.
 * @module
 */
import { loadBinding, type NativeBinding } from '../device/native.js';

/** Socket options set by name (the numbers differ between levels; the addon knows them). */
export type UdpSetOption =
  | 'SO_RCVBUF'
  | 'SO_SNDBUF'
  | 'SO_RCVBUFFORCE'
  | 'SO_SNDBUFFORCE'
  | 'SO_MARK'
  | 'SO_RXQ_OVFL'
  | 'UDP_GRO'
  | 'UDP_SEGMENT';

/** Socket options read by name. */
export type UdpGetOption = 'SO_RCVBUF' | 'SO_SNDBUF' | 'UDP_SEGMENT' | 'UDP_GRO';

/** What native/udp.c exports, plus the shared poller and close. */
export interface UdpBinding extends Pick<NativeBinding, 'close' | 'pollCreate' | 'pollSet' | 'pollClose' | 'pollRef'> {
  /**
   * socket(AF_INET or AF_INET6, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC);
   * for AF_INET6 `v6only` sets IPV6_V6ONLY (0 = dual-stack). With `netns`
   * (a path such as /run/netns/NAME) the socket is created in that network
   * namespace: setns around socket() on the calling thread, restored before
   * returning. fd or -errno.
   */
  udpOpen(family: 4 | 6, v6only: number, netns: string): number;
  /** bind(2) to a sockaddr as built by src/udp/address.ts. */
  udpBind(fd: number, sockaddr: Uint8Array): number;
  /** connect(2); a zero-length sockaddr dissolves the association (AF_UNSPEC). */
  udpConnect(fd: number, sockaddr: Uint8Array): number;
  /** getsockname(2) into `out` (>= 28 bytes); the address length or -errno. */
  udpSockname(fd: number, out: Uint8Array): number;
  udpSetOption(fd: number, name: UdpSetOption, value: number): number;
  /** The option's integer value, or -errno (e.g. -ENOPROTOOPT for UDP_SEGMENT before Linux 4.18). */
  udpGetOption(fd: number, name: UdpGetOption): number;
  /**
   * One sendmmsg(2) (EINTR retried) over messages `start .. start + count - 1`
   * of a plan: message m is `buffers[plan[3m] .. plan[3m] + plan[3m+1] - 1]`
   * gathered into one datagram, with a UDP_SEGMENT control message of
   * `plan[3m+2]` bytes when that is non-zero. Destinations: `addresses`
   * empty = none (connected socket), one = all messages, else `addresses[m]`.
   * `mapV4`: the socket is AF_INET6, so 16-byte IPv4 sockaddrs are sent as
   * IPv4-mapped sockaddr_in6. Returns the messages the kernel took (> 0), or
   * -errno of the first message. At most 1024 messages per call (UIO_MAXIOV).
   */
  udpSend(fd: number, buffers: readonly Uint8Array[], plan: Int32Array, addresses: readonly Uint8Array[], start: number, count: number, mapV4: boolean): number;
  /**
   * One recvmmsg(2) (MSG_DONTWAIT, EINTR retried) of up to `maxMessages`
   * into slots `i * slotSize` of `arena`. Per message: `lengths[i]` bytes (-1
   * when truncated), `segments[i]` the UDP_GRO segment size (0 = one
   * datagram), the source sockaddr at `names[28 i ..]`. `drops[0]` = the last
   * SO_RXQ_OVFL count seen (cumulative), `drops[1]` = 1 when one was seen.
   * Message count, or -errno (EAGAIN when nothing is queued).
   */
  udpRecv(fd: number, arena: Uint8Array, slotSize: number, maxMessages: number, lengths: Int32Array, segments: Int32Array, names: Uint8Array, drops: Uint32Array): number;
}

/** The addon, seen through its UDP functions. */
export function loadUdpBinding(): UdpBinding {
  return loadBinding() as unknown as UdpBinding;
}
