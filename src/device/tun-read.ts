/**
 * The read path of a {@link Tun}: draining the descriptor into arena slots,
 * splitting super-packets (GSO) into the output region; {@link TUN_IO} hands
 * the batches to the shared event loop, which serves `read()` callers and
 * `'packets'` listeners (event mode).
 *
 * Spec rules: RD-1, RD-2, RD-6, RD-9 and D-5 (via the core's `segmentInto`),
 * DEV-7 and DEV-9 (batch and slot sizes); D-4 extended to RD-7's UDP
 * completions (see storeZeroUdpChecksumAsOnes).
 * @module
 */
import { VectunError } from '../errors.js';
import { Arena } from '../core/arena.js';
import { segmentInto } from '../core/gso.js';
import { GSO_NONE, GSO_TCPV4, GSO_TCPV6, GSO_UDP_L4, VNET_F_NEEDS_CSUM, VNET_HDR_LEN } from '../core/virtio.js';
import type { IoKind } from '../io/event-loop.js';
import { EAGAIN, EBADFD, EINTR, syscallError } from './native.js';
import { markRemoved } from './tun-link.js';
import { MAX_EINTR, closedError, kState, type TunHost, type TunState } from './tun-state.js';
import { bump } from './tun-stats.js';

/** One read slot: a vnet header and the largest super-packet (DEV-9). */
export const READ_SLOT = VNET_HDR_LEN + 65535;
/** Frames per read with virtio headers (DEV-7). */
export const DEFAULT_BATCH = 128;
/** Smallest split-output area, so one frame with a small gso_size still fits (D-5). */
const MIN_OUTPUT = 4 << 20;

/** How the shared event loop reads a Tun (src/io/event-loop.ts). */
export const TUN_IO: IoKind<TunHost, Uint8Array[]> = {
  state: (tun) => tun[kState],
  event: 'packets',
  closedCode: 'ERR_TUN_CLOSED',
  closedError,
  quiet: (err) => err.code === 'ERR_TUN_CLOSED' || err.code === 'ERR_TUN_REMOVED',
  receive(tun) {
    const batch = readBatch(tun);
    if (batch === EAGAIN) return EAGAIN;
    if (batch instanceof VectunError) {
      if (batch.errno !== EBADFD) return batch;
      markRemoved(tun, batch); // rejects every reader
      return undefined;
    }
    if (batch.length === 0) return undefined; // every frame dropped; read on
    tun[kState].stats.reads++;
    return batch;
  },
};

/** Drains the descriptor (or continues the last drain) and splits the frames. */
function readBatch(tun: TunHost): Uint8Array[] | VectunError | typeof EAGAIN {
  const s = tun[kState];
  const stats = s.stats;
  if (s.slots === undefined) allocateArena(s);
  const arena = s.slots!;
  if (s.frameNext >= s.frameCount) {
    let n = s.binding.readBatch(s.fd, arena, READ_SLOT, s.batchSize, s.lengths);
    for (let k = 0; n === -EINTR && k < MAX_EINTR; k++) n = s.binding.readBatch(s.fd, arena, READ_SLOT, s.batchSize, s.lengths);
    if (n === -EAGAIN) return EAGAIN;
    if (n < 0) return syscallError(n, 'read', s.name);
    s.frameNext = 0;
    s.frameCount = n;
    stats.frames += n;
  }
  const packets: Uint8Array[] = [];
  const out = s.out;
  let used = 0;
  let i = s.frameNext;
  for (; i < s.frameCount; i++) {
    const frame = arena.subarray(i * READ_SLOT, i * READ_SLOT + s.lengths[i]!);
    if (out === undefined) {
      // RD-1: plain packets, delivered in place.
      if (frame.length === 0) drop(tun, new VectunError('ERR_PACKET_EMPTY', 'empty packet read'));
      else packets.push(frame);
      continue;
    }
    const before = packets.length;
    let n: number;
    try {
      n = segmentInto(frame, out.subarray(used), packets);
    } catch (err) {
      packets.length = before;
      // D-5: keep the frame for the next read when this batch filled the output area.
      if (err instanceof VectunError && err.code === 'ERR_OUTPUT_TOO_SMALL' && before > 0) break;
      drop(tun, err instanceof VectunError ? err : new VectunError('ERR_TUN_SYSCALL', String(err), { cause: err }));
      continue;
    }
    used += n;
    if (frame.length > VNET_HDR_LEN && frame[1] === GSO_NONE && (frame[0]! & VNET_F_NEEDS_CSUM) !== 0 && packets.length === before + 1) {
      storeZeroUdpChecksumAsOnes(frame, packets[before]!);
    }
    const count = packets.length;
    if (count > s.verified.length) {
      const grown = new Uint8Array(Math.max(count, 2 * s.verified.length, 256));
      grown.set(s.verified);
      s.verified = grown;
    }
    s.verified.fill(splitChecksumVerifies(frame) ? 1 : 0, before, count);
    if (frame.length > VNET_HDR_LEN && frame[1] !== GSO_NONE) {
      stats.superPackets++;
      stats.segments += packets.length - before;
    }
    // RD-6 / RD-9: a bare header gives an empty packet, an empty GSO payload none.
    if (packets.length === before) drop(tun, new VectunError('ERR_PACKET_EMPTY', 'frame without packet data'));
    else if (packets[before]!.length === 0 && packets.length === before + 1) {
      packets.length = before;
      drop(tun, new VectunError('ERR_PACKET_EMPTY', 'frame with an empty packet'));
    }
  }
  s.frameNext = i;
  s.batchLength = out === undefined ? 0 : packets.length;
  for (const p of packets) stats.bytesRead += p.length;
  stats.packetsRead += packets.length;
  return packets;
}

/** One Arena: read slots, then (with virtio headers) the split-output region (D-5 sizing). */
function allocateArena(s: TunState): void {
  const slotBytes = s.batchSize * READ_SLOT;
  const outBytes = s.offload.vnetHdr ? Math.max(2 * slotBytes, MIN_OUTPUT) : 0;
  const bytes = new Arena(slotBytes + outBytes).bytes;
  s.slots = bytes.subarray(0, slotBytes);
  s.out = outBytes > 0 ? bytes.subarray(slotBytes, slotBytes + outBytes) : undefined;
}

function drop(tun: TunHost, err: VectunError): void {
  bump(tun[kState].stats.readDrops, err.code);
  tun.emit('drop', err);
}

/**
 * D-4 for RD-7's completions too, here at the device: RD-7 (the core's
 * `segment`, as wireguard-go's gsoNoneChecksum) stores a computed checksum
 * as is, so about 1 UDP datagram in 65,536 would leave with 0x0000, which
 * means "no checksum" over IPv4 and is dropped by every IPv6 receiver (RFC
 * 8200 sec. 8.1). The device stores 0xFFFF, the same sum in ones'
 * complement, which is what the kernel itself writes without offload
 * (skb_checksum_help). csum_offset 6 is UDP's checksum field.
 */
function storeZeroUdpChecksumAsOnes(frame: Uint8Array, packet: Uint8Array): void {
  if ((frame[8]! | (frame[9]! << 8)) !== 6) return;
  const at = (frame[6]! | (frame[7]! << 8)) + 6;
  if (at + 1 < packet.length && packet[at] === 0 && packet[at + 1] === 0) {
    packet[at] = 0xff;
    packet[at + 1] = 0xff;
  }
}

/**
 * Whether RD-9 gave this frame's packets a full transport checksum that CK-4
 * accepts unchanged: a GSO frame whose csum_start ends a fixed IP header
 * (IPv4 IHL 5, or IPv6 with TCP/UDP as next header), with the protocol the GSO
 * type names and csum_offset at that protocol's checksum field. Then the
 * split's sum covers exactly the bytes and pseudo-header CK-4 checks
 * (GRO-C2 candidates use the same iph). RD-7 completions (gso_type NONE) are
 * not claimed: they start from the kernel's partial sum, not one we built.
 */
function splitChecksumVerifies(f: Uint8Array): boolean {
  if (f.length < VNET_HDR_LEN + 40) return false;
  const gso = f[1];
  const start = f[6]! | (f[7]! << 8);
  const offset = f[8]! | (f[9]! << 8);
  const b0 = f[VNET_HDR_LEN]!;
  let proto: number;
  if (b0 === 0x45) {
    if (start !== 20 || gso === GSO_TCPV6) return false;
    proto = f[VNET_HDR_LEN + 9]!;
  } else if (b0 >> 4 === 6) {
    if (start !== 40 || gso === GSO_TCPV4) return false;
    proto = f[VNET_HDR_LEN + 6]!;
  } else return false;
  if (gso === GSO_TCPV4 || gso === GSO_TCPV6) return proto === 6 && offset === 16;
  return gso === GSO_UDP_L4 && proto === 17 && offset === 6;
}
