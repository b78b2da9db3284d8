/**
 * The receive path of a {@link UdpSocket}: recvmmsg(2) into arena slots,
 * coalesced (UDP_GRO) receives split into datagram views, sources interned;
 * {@link UDP_IO} hands the batches to the shared event loop, which serves
 * `read()` callers and `'datagrams'` listeners (event mode).
 * @module
 */
import { VectunError } from '../errors.js';
import { Arena } from '../core/arena.js';
import { EAGAIN, EINTR } from '../device/native.js';
import type { IoKind } from '../io/event-loop.js';
import { SOCKADDR_IN6_LEN, type UdpEndpoint } from './address.js';
import { ECONNREFUSED, EHOSTUNREACH, ENETUNREACH, MAX_EINTR, closedError, kState, udpError, type UdpHost, type UdpState } from './socket-state.js';

/** One receive slot: the largest UDP payload or GRO-coalesced receive (65535 - 8 rounded up). */
export const UDP_RECV_SLOT = 65536;

/** One receive: datagram views (valid until the next read) and their sources. */
export interface UdpBatch {
  /**
   * Views on the socket's arena; valid until the next read. Later reads may
   * hand out the same view objects again with new contents (views are reused
   * per receive slot), so copy (`slice()`) what you keep.
   */
  datagrams: Uint8Array[];
  /** `sources[i]` sent `datagrams[i]`; identical sources are the same object within (and usually across) batches. */
  sources: UdpEndpoint[];
}

/** How the shared event loop reads a UdpSocket (src/io/event-loop.ts). */
export const UDP_IO: IoKind<UdpHost, UdpBatch> = {
  state: (sock) => sock[kState],
  event: 'datagrams',
  closedCode: 'ERR_UDP_CLOSED',
  closedError,
  quiet: (err) => err.code === 'ERR_UDP_CLOSED',
  receive(sock) {
    const batch = receive(sock[kState]);
    if (batch === EAGAIN || batch instanceof VectunError) return batch;
    return batch.datagrams.length === 0 ? undefined : batch; // only truncated messages; read on
  },
};

/** One recvmmsg, split into datagram views by the GRO segment size. */
function receive(s: UdpState): UdpBatch | VectunError | typeof EAGAIN {
  const st = s.stats;
  s.arena ??= new Arena(s.batchSize * UDP_RECV_SLOT).bytes.subarray(0, s.batchSize * UDP_RECV_SLOT);
  const arena = s.arena;
  let n = -EINTR;
  for (let k = 0; k < MAX_EINTR; k++) {
    n = s.binding.udpRecv(s.fd, arena, UDP_RECV_SLOT, s.batchSize, s.lengths, s.segments, s.names, s.drops);
    if (n === -EINTR) continue;
    if (n === -ECONNREFUSED || n === -EHOSTUNREACH || n === -ENETUNREACH) {
      // An ICMP error for an earlier send on a connected socket (the kernel reports it once, on any call):
      // counted, not a receive failure; nothing queued was lost. wireguard-go's receive loop goes on, too.
      const code = udpError(n, 'recvmmsg').code;
      st.receiveErrors[code] = (st.receiveErrors[code] ?? 0) + 1;
      continue;
    }
    break;
  }
  if (n === -EAGAIN) return EAGAIN;
  if (n < 0) return udpError(n, 'recvmmsg');
  if (s.drops[1] === 1 && s.drops[0]! > st.receiveDrops) st.receiveDrops = s.drops[0]!;
  st.receiveCalls++;
  st.receiveMessages += n;
  const datagrams: Uint8Array[] = [];
  const sources: UdpEndpoint[] = [];
  const buffer = arena.buffer;
  const base = arena.byteOffset;
  const names = s.names;
  const words = s.nameWords;
  let bytes = 0;
  let last: UdpEndpoint | undefined;
  let lastAt = 0;
  for (let i = 0; i < n; i++) {
    const len = s.lengths[i]!;
    if (len < 0) {
      st.truncated++;
      continue;
    }
    // Same source as the last accepted message (the common case): skip the lookup.
    let src = last;
    const at = i * SOCKADDR_IN6_LEN;
    if (src === undefined || !sameName(words, at >> 2, lastAt >> 2)) {
      src = s.interner.intern(names, at, SOCKADDR_IN6_LEN);
      if (src === undefined) {
        st.truncated++;
        continue;
      }
    }
    last = src;
    lastAt = at;
    const seg = s.segments[i]!;
    bytes += len;
    const grouped = seg > 0 && seg < len;
    // Steady traffic fills a slot the same way batch after batch: reuse that slot's views
    // (creating typed arrays and collecting them was the largest JS cost per datagram).
    let views = s.slotViews[i];
    if (views === undefined || s.slotLength[i] !== len || s.slotSegment[i] !== (grouped ? seg : 0)) {
      views = sliceSlot(buffer, base + i * UDP_RECV_SLOT, len, grouped ? seg : 0);
      s.slotViews[i] = views;
      s.slotLength[i] = len;
      s.slotSegment[i] = grouped ? seg : 0;
    }
    if (views.length === 1) {
      datagrams.push(views[0]!);
      sources.push(src);
      continue;
    }
    // UDP_GRO (udp(7)): the kernel coalesced datagrams of one flow; all are `seg` bytes but the last.
    st.groReceives++;
    st.groSegments += views.length;
    for (let k = 0; k < views.length; k++) {
      datagrams.push(views[k]!);
      sources.push(src);
    }
  }
  st.datagramsReceived += datagrams.length;
  st.bytesReceived += bytes;
  return { datagrams, sources };
}

/** Views on one receive slot: one datagram, or `segment`-byte datagrams (the last may be shorter). */
function sliceSlot(buffer: ArrayBufferLike, offset: number, length: number, segment: number): Uint8Array[] {
  if (segment === 0) return [new Uint8Array(buffer, offset, length)];
  const views: Uint8Array[] = [];
  for (let p = 0; p < length; p += segment) views.push(new Uint8Array(buffer, offset + p, Math.min(segment, length - p)));
  return views;
}

/** Whether the sockaddrs at words `a` and `b` (7 x 32 bits each) are equal. */
function sameName(w: Int32Array, a: number, b: number): boolean {
  return w[a] === w[b] && w[a + 1] === w[b + 1] && w[a + 2] === w[b + 2] && w[a + 3] === w[b + 3] &&
    w[a + 4] === w[b + 4] && w[a + 5] === w[b + 5] && w[a + 6] === w[b + 6];
}
