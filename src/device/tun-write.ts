/**
 * The write path of a {@link Tun}: validation, serialized writes, GRO
 * coalescing into write lists, one writev per list, waiting on EAGAIN, and
 * the EINVAL fallback that turns GRO off instead of dropping traffic.
 *
 * Spec rules: WR-1, SG-1..SG-6, D-6, D-9, DEV-6, DEV-8, GRO-A6 (via the
 * core's `Coalescer`), style rule 3 (EINVAL fallback).
 * @module
 */
import { VectunError } from '../errors.js';
import { waitWritable } from '../io/event-loop.js';
import { GSO_UDP_L4, VNET_HDR_LEN } from '../core/virtio.js';
import { EBADFD, EINTR, EINVAL, syscallError } from './native.js';
import { markRemoved } from './tun-link.js';
import { MAX_EINTR, checkOpen, closedError, kState, type TunHost, type TunState } from './tun-state.js';
import { invalid, optionalBool } from '../options.js';
import { bump, errnoKey } from './tun-stats.js';

/** A packet the kernel did not take (D-6). */
export interface WriteFailure {
  /** Position in the array passed to `write`. */
  index: number;
  /** Why: `ERR_TUN_SYSCALL` with `errno`/`syscall`, or a packet-level code. */
  error: VectunError;
}

/** What one `write` achieved (D-6). */
export interface WriteResult {
  /** Packets the kernel accepted. */
  packets: number;
  /** Bytes the kernel accepted, vnet headers included (SG-5). */
  bytes: number;
  /** writev calls that succeeded. */
  writes: number;
  /** Packets not written, with the reason. */
  failures: WriteFailure[];
}

/** Options of {@link Tun.write}. */
export interface TunWriteOptions {
  /**
   * Skips the GRO checksum validation (CK-4) for packets known to verify:
   * `true` for all, or one flag per packet (1 = verified), such as
   * another Tun's {@link Tun.checksumsVerified} for the unmodified batch it
   * read. Default: every packet is validated (packets may have been
   * modified). A false claim lets a corrupt packet merge and get a fresh,
   * valid checksum from the kernel.
   */
  checksumsVerified?: boolean | Uint8Array;
}

const ZERO_HDR = new Uint8Array(VNET_HDR_LEN);

/** `Tun.write()`: validates up front, then queues the write behind the previous one (DEV-8). */
export function write(tun: TunHost, packets: readonly Uint8Array[], options?: TunWriteOptions): Promise<WriteResult> {
  let s: TunState;
  let verified: boolean | Uint8Array | undefined;
  try {
    s = checkOpen(tun, 'write');
    if (!Array.isArray(packets)) throw invalid('packets must be an array of Uint8Array');
    if (options !== undefined) {
      if (options === null || typeof options !== 'object') throw invalid('options must be an object');
      verified = options.checksumsVerified;
      if (verified !== undefined && typeof verified !== 'boolean' && !(verified instanceof Uint8Array)) {
        throw invalid('options.checksumsVerified must be a boolean or a Uint8Array');
      }
    }
    for (let i = 0; i < packets.length; i++) {
      if (!(packets[i] instanceof Uint8Array)) throw invalid(`packets[${i}] must be a Uint8Array`);
      if (packets[i]!.length > 65535) throw invalid(`packets[${i}] is longer than 65535 bytes`);
    }
  } catch (err) {
    return Promise.reject(err);
  }
  // DEV-8: one write at a time (the coalescer's tables are shared).
  const p = s.writeChain.then(() => writeNow(tun, packets, verified));
  s.writeChain = p.catch(() => undefined);
  return p;
}

async function writeNow(tun: TunHost, input: readonly Uint8Array[], verified: boolean | Uint8Array | undefined): Promise<WriteResult> {
  const s = tun[kState];
  if (s.closed) throw closedError('write');
  if (s.removed !== undefined) throw s.removed;
  const result: WriteResult = { packets: 0, bytes: 0, writes: 0, failures: [] };
  // D-9: empty packets are dropped and reported, not written.
  let packets = input;
  if (input.some((p) => p.length === 0)) {
    packets = input.filter((p, index) => {
      if (p.length > 0) return true;
      result.failures.push({ index, error: new VectunError('ERR_PACKET_EMPTY', `packets[${index}] is empty`) });
      bump(s.stats.writeDrops, 'ERR_PACKET_EMPTY');
      return false;
    });
    if (verified instanceof Uint8Array) verified = undefined; // indices shifted: validate all
  }
  const c = s.coalescer;
  if (c === undefined) {
    // WR-1: one write per packet.
    await writeLists(tun, packets.map((p) => [p]), null, input, result);
    return result;
  }
  if (!s.gro.tcp && !s.gro.udp) {
    // GRO-A6: every packet alone behind an all-zero header; no coalescing pass needed.
    await writeLists(tun, packets.map((p) => [ZERO_HDR, p]), null, input, result);
    return result;
  }
  c.tcp = s.gro.tcp;
  c.udp = s.gro.udp;
  const list = c.coalesce(packets, verified === undefined ? undefined : { checksumsVerified: verified });
  const resend = await writeLists(tun, list.writes, list.packetCounts, input, result);
  if (resend.length > 0) await writeLists(tun, resend.map((p) => [ZERO_HDR, p]), null, input, result);
  return result;
}

/**
 * SG-4 over `lists`: EAGAIN waits for writability and resumes at the same
 * list; EBADFD fails the write (device removed); other errnos fail that
 * list's packets and go on. Returns the packets of coalesced writes the
 * kernel rejected with EINVAL, to be resent one by one.
 */
async function writeLists(tun: TunHost, lists: readonly (readonly Uint8Array[])[], counts: readonly number[] | null, input: readonly Uint8Array[], result: WriteResult): Promise<Uint8Array[]> {
  const s = tun[kState];
  if (s.writeResults.length < lists.length) s.writeResults = new Int32Array(new ArrayBuffer(4 * Math.max(lists.length, 2 * s.writeResults.length)));
  const results = s.writeResults;
  const resend: Uint8Array[] = [];
  let indexOf: Map<Uint8Array, number> | undefined;
  const fail = (packets: readonly Uint8Array[], error: VectunError): void => {
    indexOf ??= new Map(input.map((p, i) => [p, i] as const).reverse());
    for (const p of packets) result.failures.push({ index: indexOf.get(p) ?? -1, error });
    bump(s.stats.writeDrops, error.errno !== undefined ? errnoKey(error) : error.code, packets.length);
  };
  const vnet = s.offload.vnetHdr;
  let start = 0;
  let interrupts = 0;
  while (start < lists.length) {
    if (s.closed) throw closedError('write');
    if (s.removed !== undefined) throw s.removed;
    const stop = s.binding.writeLists(s.fd, lists, start, results);
    for (let i = start; i < stop && i < lists.length; i++) {
      const r = results[i]!;
      const list = lists[i]!;
      const count = counts?.[i] ?? 1;
      const packetsOf = (): Uint8Array[] => (count > 1 ? s.coalescer!.uncoalesced(i) : [list[vnet ? 1 : 0]!]);
      if (r >= 0) {
        let expected = 0;
        for (const b of list) expected += b.length;
        if (r !== expected) {
          // SG-3: TUN writes are atomic; a short count means the frame was not taken whole.
          fail(packetsOf(), new VectunError('ERR_TUN_SYSCALL', `writev wrote ${r} of ${expected} bytes`, { syscall: 'writev' }));
          continue;
        }
        result.packets += count;
        result.bytes += r;
        result.writes++;
        s.stats.writes++;
        s.stats.packetsWritten += count;
        s.stats.bytesWritten += r;
        if (count > 1) s.stats.coalescedWrites++;
      } else if (r === -EINVAL && count > 1) {
        // Style rule 3: the kernel refused the super-packet; GRO off for its protocol, resend plainly.
        groFallback(tun, list[0]![1] === GSO_UDP_L4 ? 'udp' : 'tcp');
        resend.push(...s.coalescer!.uncoalesced(i));
      } else {
        fail(packetsOf(), syscallError(r, 'writev', s.name));
      }
    }
    if (stop >= lists.length) break;
    const r = results[stop]!;
    if (r === -EBADFD) {
      markRemoved(tun, syscallError(r, 'writev', s.name));
      throw s.removed!;
    }
    if (r === -EINTR) {
      // SG-4: retry at once (the addon already does; a binding may not).
      if (++interrupts > MAX_EINTR) throw syscallError(r, 'writev', s.name);
      start = stop;
      continue;
    }
    // EAGAIN (SG-4): wait until writable, then the same list again.
    s.stats.writeWaits++;
    await waitWritable(s);
    start = stop;
  }
  return resend;
}

/** Style rule 3: GRO off for `proto`, counted, warned once. */
function groFallback(tun: TunHost, proto: 'tcp' | 'udp'): void {
  const s = tun[kState];
  s.gro[proto] = false;
  s.stats.groFallbacks[proto]++;
  if (!s.warned[proto]) {
    s.warned[proto] = true;
    tun.emit('warning', new VectunError('ERR_TUN_GRO_FALLBACK', `${s.name}: the kernel rejected a coalesced ${proto.toUpperCase()} write (EINVAL); ${proto.toUpperCase()} GRO is now off for this device`, { errno: EINVAL, syscall: 'writev' }));
  }
}

/** `Tun.setGro()` (DEV-6): only what was negotiated can be on (DEV-3). */
export function setGro(tun: TunHost, options: { tcp?: boolean; udp?: boolean }): void {
  const s = checkOpen(tun, 'setGro');
  if (options === null || typeof options !== 'object') throw invalid('options must be an object');
  const tcp = optionalBool(options.tcp, 'options.tcp');
  const udp = optionalBool(options.udp, 'options.udp');
  if (tcp !== undefined) s.gro.tcp = tcp && (s.offload.tso4 || s.offload.tso6);
  if (udp !== undefined) s.gro.udp = udp && (s.offload.uso4 || s.offload.uso6);
}
