/**
 * Fuzz target for the offload core (`npm run fuzz`).
 *
 *   node dist/fuzz/run.js [--seed N] [--count N] [--seconds N] [--case N] [--target core|wg|all]
 *
 * `--target wg` runs only the WireGuard protocol target (fuzz/wg.ts); the
 * default runs both, WireGuard first.
 *
 * Each case is generated from its own 32-bit case seed (derived from --seed
 * and the case number) and is one of:
 * - segment: a valid super-packet or plain frame, usually mutated (flipped
 *   bytes, truncation, header fields), into `segment` and `segmentInto`
 *   (plain frame and output, one arena, arena frame with plain output, plain
 *   frame with arena output). The only acceptable outcomes are
 *   packets or a `VectunError`; results must equal the literal reference model
 *   (test/core/gso-reference.ts), the five calls must agree, and the frame
 *   must be left unchanged.
 * - coalesce: a random batch of flows (TCP/UDP, IPv4/IPv6, in or out of order,
 *   short tails, PSH), usually mutated, into `coalesce` and a reused
 *   `Coalescer`. Invariants: every input exactly once across the writes;
 *   <= 1024 entries per write; IP total length <= 65535; each write's vnet
 *   header consistent with its head and fragments (GRO-A2/A3/A5, D-1). For
 *   unmutated batches, segmenting each coalesced write must give back exactly
 *   the original packets ("segment(coalesce(x)) = x").
 *
 * Stops at the first violation, prints it with `--case <seed>` to replay that
 * one case, and exits 1. Bounded by --count cases and --seconds.
 */
import { VectunError } from '../src/errors.js';
import { Arena } from '../src/core/arena.js';
import { Coalescer, coalesce } from '../src/core/gro.js';
import { segment, segmentInto } from '../src/core/gso.js';
import { GSO_NONE, GSO_TCPV4, GSO_TCPV6, GSO_UDP_L4, VNET_HDR_LEN, type GsoType } from '../src/core/virtio.js';
import { TCP_ACK, TCP_FIN, TCP_PSH, V4, V6, buildPacket, concat, frame as makeFrame } from '../test/core/packets.js';
import { referenceSegment } from '../test/core/gso-reference.js';
import { Violation, prng, runCases, type FuzzOptions, type FuzzReportBase } from './harness.js';
import { runWgFuzz } from './wg.js';

export type { FuzzOptions } from './harness.js';

export interface FuzzReport extends FuzzReportBase {
  segmentCases: number;
  coalesceCases: number;
  segmentErrors: number;
  roundTrips: number;
}

function check(cond: boolean, kind: string, message: string): void {
  if (!cond) throw new Violation(kind, message);
}

function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** Runs `fn`; a non-VectunError exception is a violation. */
function outcome<T>(what: string, fn: () => T): T | VectunError {
  try {
    return fn();
  } catch (e) {
    if (e instanceof VectunError) return e;
    throw new Violation('unexpected-exception', `${what} threw ${e instanceof Error ? e.stack ?? e.message : String(e)}`);
  }
}

// ------------------------------------------------------------ segment

const arena = new Arena(12 << 20);
const arena2 = new Arena(8 << 20);
const plainOut = new Uint8Array(8 << 20);
const plainOut2 = new Uint8Array(8 << 20);
const FRAME_AT = 0;
const OUT_AT = 128 * 1024;

function randomFrame(r: (n: number) => number): Uint8Array {
  const version = r(2) === 0 ? 4 : 6;
  const tcp = r(2) === 0;
  const payload = r(5) === 0 ? r(12000) : r(3000);
  const gsoSize = 1 + r(r(4) === 0 ? 40 : 1500);
  const p = buildPacket({
    version,
    proto: tcp ? 'tcp' : 'udp',
    src: version === 4 ? V4.A : V6.A,
    dst: version === 4 ? V4.B : V6.C,
    payload,
    seq: r(0x7fffffff) * 2 + r(2),
    flags: [TCP_ACK, TCP_ACK | TCP_PSH, TCP_ACK | TCP_PSH | TCP_FIN, r(256)][r(4)]!,
    ipId: r(65536),
    ...(tcp && r(4) === 0 ? { options: new Uint8Array(4 * r(11)).map(() => r(256)) } : {}),
  });
  const iph = version === 4 ? 20 : 40;
  const thLen = tcp ? (p[iph + 12]! >> 4) * 4 : 8;
  const gsoType: number = r(4) === 0 ? GSO_NONE : tcp ? (version === 4 ? GSO_TCPV4 : GSO_TCPV6) : GSO_UDP_L4;
  const f = makeFrame(
    { needsCsum: r(4) !== 0, gsoType: GSO_NONE, hdrLen: iph + thLen, gsoSize, csumStart: iph, csumOffset: tcp ? 16 : 6 },
    p,
  );
  f[1] = gsoType;
  // Mutations: zero to four, of several kinds.
  for (let m = r(5); m > 0; m--) {
    switch (r(9)) {
      case 0:
        f[r(f.length)] = r(256);
        break;
      case 1:
        f[r(10)] = r(256);
        break;
      case 2:
        f[1] = [0, 1, 3, 4, 5, 0x81, 0x84, r(256)][r(8)]!;
        break;
      case 3: {
        const at = 2 + 2 * r(4);
        const v = [0, 1, r(64), r(200), r(65536), 0xffff][r(6)]!;
        f[at] = v & 0xff;
        f[at + 1] = v >> 8;
        break;
      }
      case 4:
        return f.subarray(0, r(f.length + 1));
      case 5:
        f[VNET_HDR_LEN] = r(256); // version / IHL
        break;
      case 6:
        f[VNET_HDR_LEN + iph + 12] = r(256); // TCP data offset
        break;
      case 7:
        f[VNET_HDR_LEN + iph + r(thLen)] = r(256);
        break;
      default:
        f[0] = r(256);
    }
  }
  return f;
}

function fuzzSegment(f: Uint8Array, report: FuzzReport): void {
  const before = f.slice();
  const ref = referenceSegment(f);
  const a = outcome('segment', () => segment(f));
  check(equalBytes(f, before), 'input-mutated', 'segment() changed its input frame');
  // Plain output at an odd offset in its buffer: the views must carry it.
  const outB: Uint8Array[] = [];
  const b = outcome('segmentInto(plain)', () => segmentInto(f, plainOut.subarray(3), outB));
  check(equalBytes(f, before), 'input-mutated', 'segmentInto() changed its input frame');
  arena.bytes.set(f, FRAME_AT);
  const inArena = arena.bytes.subarray(FRAME_AT, FRAME_AT + f.length);
  const outC: Uint8Array[] = [];
  const c = outcome('segmentInto(arena)', () => segmentInto(inArena, arena.bytes.subarray(OUT_AT), outC));
  check(equalBytes(inArena, before), 'input-mutated', 'segmentInto() changed its arena frame');
  // Mixed memory: frame in an arena with plain output, plain frame into another arena.
  const outD: Uint8Array[] = [];
  const d = outcome('segmentInto(arena frame, plain out)', () => segmentInto(inArena, plainOut2.subarray(8), outD));
  check(equalBytes(inArena, before), 'input-mutated', 'segmentInto() changed its arena frame');
  const outE: Uint8Array[] = [];
  const e = outcome('segmentInto(plain frame, arena out)', () => segmentInto(f, arena2.bytes.subarray(16), outE));
  check(equalBytes(f, before), 'input-mutated', 'segmentInto() changed its input frame');

  const paths = [
    ['segment', a, []],
    ['segmentInto(plain)', b, outB],
    ['segmentInto(arena)', c, outC],
    ['segmentInto(arena frame, plain out)', d, outD],
    ['segmentInto(plain frame, arena out)', e, outE],
  ] as const;
  if ('code' in ref) {
    for (const [name, x, out] of paths) {
      check(x instanceof VectunError && x.code === ref.code, 'segment-error', `${name}: expected ${ref.code}, got ${x instanceof VectunError ? x.code : 'packets'}`);
      check(out.length === 0, 'segment-partial', `${name}: delivered packets with an error (D-5)`);
    }
    report.segmentErrors++;
    return;
  }
  for (const [name, x, out] of paths) {
    check(!(x instanceof VectunError), 'segment-error', `${name}: unexpected ${x instanceof VectunError ? x.code : ''}`);
    const got = name === 'segment' ? (x as Uint8Array[]) : out;
    check(got.length === ref.packets.length, 'segment-count', `${name}: ${got.length} packets, reference ${ref.packets.length}`);
    for (let i = 0; i < got.length; i++) {
      check(equalBytes(got[i]!, ref.packets[i]!), 'segment-bytes', `${name}: packet ${i} differs from the reference model`);
    }
  }
}

// ------------------------------------------------------------ coalesce

interface Batch {
  packets: Uint8Array[];
  /** Unmutated, in-order-per-flow inputs: the round trip must hold. */
  clean: boolean;
}

function randomBatch(r: (n: number) => number): Batch {
  const flows = 1 + r(8);
  const tiny = r(40) === 0; // many tiny packets: the 1024-entry limit (GRO-L2)
  const perFlow: Uint8Array[][] = [];
  for (let fl = 0; fl < flows; fl++) {
    const version = r(2) === 0 ? 4 : 6;
    const tcp = r(3) !== 0;
    const mss = tiny ? 1 + r(8) : 1 + r(1460);
    const n = tiny ? 600 + r(600) : 1 + r(48);
    const list: Uint8Array[] = [];
    let seq = r(0x7fffffff) * 2;
    const id0 = r(65536);
    const srcPort = 1 + fl;
    for (let i = 0; i < n; i++) {
      const last = i === n - 1;
      const payload = last && r(3) === 0 ? 1 + r(mss) : mss;
      list.push(
        buildPacket({
          version,
          proto: tcp ? 'tcp' : 'udp',
          src: version === 4 ? V4.A : V6.A,
          dst: version === 4 ? V4.B : V6.B,
          srcPort,
          payload,
          seq: seq >>> 0,
          flags: last && r(2) === 0 ? TCP_ACK | TCP_PSH : TCP_ACK,
          ipId: (id0 + i) & 0xffff,
          fill: r(256),
        }),
      );
      seq += payload;
    }
    perFlow.push(list);
  }
  // Interleave flows, keeping each flow's order.
  const packets: Uint8Array[] = [];
  const at = perFlow.map(() => 0);
  for (let left = perFlow.reduce((s, l) => s + l.length, 0); left > 0; left--) {
    let fl = r(flows);
    while (at[fl]! >= perFlow[fl]!.length) fl = (fl + 1) % flows;
    packets.push(perFlow[fl]![at[fl]!++]!);
  }
  if (r(3) === 0) return { packets, clean: true };
  // Mutations: swaps (out of order), byte flips, truncation, junk, empties.
  for (let m = 1 + r(6); m > 0; m--) {
    const i = r(packets.length);
    const p = packets[i]!;
    switch (r(7)) {
      case 0: {
        const j = r(packets.length);
        packets[i] = packets[j]!;
        packets[j] = p;
        break;
      }
      case 1:
        if (p.length > 0) p[r(p.length)] = r(256);
        break;
      case 2:
        packets[i] = p.slice(0, r(p.length + 1));
        break;
      case 3:
        packets.splice(i, 0, new Uint8Array(r(100)).map(() => r(256)));
        break;
      case 4:
        if (p.length > 8) p[8] ^= 1; // TTL / hop limit-ish
        break;
      case 5:
        packets.splice(i, 0, new Uint8Array(0));
        break;
      default:
        if (p.length > 40) p[p.length - 1] ^= 0x80; // bad checksum
    }
  }
  return { packets, clean: false };
}

/** Checks one write list against its inputs; returns the packet index lists per write. */
export function checkWrites(inputs: readonly Uint8Array[], writes: readonly (readonly Uint8Array[])[]): number[][] {
  const byBuffer = new Map<ArrayBufferLike, number>();
  inputs.forEach((p, i) => byBuffer.set(p.buffer, i));
  const seen = new Uint8Array(inputs.length);
  const members: number[][] = [];
  for (const [w, v] of writes.entries()) {
    check(v.length >= 2, 'write-shape', `write ${w} has ${v.length} entries`);
    check(v.length <= 1024, 'write-entries', `write ${w} has ${v.length} > 1024 entries (GRO-L2)`);
    const hdr = v[0]!;
    check(hdr.length === VNET_HDR_LEN, 'write-shape', `write ${w}: header of ${hdr.length} bytes`);
    const list: number[] = [];
    for (let k = 1; k < v.length; k++) {
      const e = v[k]!;
      const i = byBuffer.get(e.buffer);
      check(i !== undefined, 'write-foreign', `write ${w} entry ${k} is not a view on an input packet`);
      const p = inputs[i!]!;
      check(e.byteOffset + e.length === p.byteOffset + p.length, 'write-view', `write ${w} entry ${k} does not end where its packet ends`);
      check(k !== 1 || (e.byteOffset === p.byteOffset && e.length === p.length), 'write-view', `write ${w}: head is not a whole packet`);
      check(seen[i!] === 0, 'write-duplicate', `input ${i} appears twice`);
      seen[i!] = 1;
      list.push(i!);
    }
    const total = v.reduce((n, e) => n + e.length, 0) - VNET_HDR_LEN;
    const head = v[1]!;
    if (v.length === 2) {
      check(hdr.every((b) => b === 0), 'header-not-zero', `write ${w}: single packet with a non-zero vnet header (GRO-A6, D-1)`);
    } else {
      check(total <= 65535, 'ip-length', `write ${w}: ${total} bytes > 65535 (GRO-L1)`);
      const v4 = head[0]! >> 4 === 4;
      const iph = v4 ? 20 : 40;
      const tcp = (v4 ? head[9] : head[6]) === 6;
      const thLen = tcp ? (head[iph + 12]! >> 4) * 4 : 8;
      const gsoType: GsoType = tcp ? (v4 ? GSO_TCPV4 : GSO_TCPV6) : GSO_UDP_L4;
      const le = (at: number): number => hdr[at]! | (hdr[at + 1]! << 8);
      const gsoSize = le(4);
      check(hdr[0] === 1 && hdr[1] === gsoType, 'header-gso', `write ${w}: flags ${hdr[0]} gso_type ${hdr[1]}, want 1/${gsoType}`);
      check(le(2) === iph + thLen && le(6) === iph && le(8) === (tcp ? 16 : 6), 'header-gso', `write ${w}: hdr_len/csum fields inconsistent`);
      check(gsoSize === head.length - iph - thLen, 'header-gso', `write ${w}: gso_size ${gsoSize} != head payload ${head.length - iph - thLen} (GRO-A5)`);
      for (let k = 2; k < v.length; k++) {
        const n = v[k]!.length;
        check(k === v.length - 1 ? n <= gsoSize && n > 0 : n === gsoSize, 'header-gso', `write ${w}: fragment ${k} of ${n} bytes with gso_size ${gsoSize} (GRO-A5)`);
      }
      const ipLen = v4 ? (head[2]! << 8) | head[3]! : ((head[4]! << 8) | head[5]!) + 40;
      check(ipLen === total, 'ip-length', `write ${w}: head IP length ${ipLen}, write carries ${total}`);
    }
    members.push(list);
  }
  const missing = seen.indexOf(0);
  check(missing < 0, 'write-missing', `input ${missing} is in no write`);
  return members;
}

const reused = { tcp: new Coalescer({ tcp: true, udp: false }), udp: new Coalescer({ tcp: true, udp: true }) };

function fuzzCoalesce(r: (n: number) => number, report: FuzzReport): void {
  const batch = randomBatch(r);
  const udp = r(2) === 0;
  const pristine = batch.packets.map((p) => p.slice());
  const useClass = r(2) === 0;
  const res = outcome('coalesce', () =>
    useClass ? (udp ? reused.udp : reused.tcp).coalesce(batch.packets) : { writes: coalesce(batch.packets, { udp }), packetCounts: undefined },
  );
  check(!(res instanceof VectunError), 'coalesce-error', `coalesce threw ${res instanceof VectunError ? res.code : ''} (it must not for packets)`);
  const { writes, packetCounts } = res as { writes: Uint8Array[][]; packetCounts: number[] | undefined };
  const members = checkWrites(batch.packets, writes);
  if (packetCounts) {
    check(packetCounts.length === writes.length, 'packet-counts', 'packetCounts length differs from writes');
    members.forEach((m, w) => check(packetCounts[w] === m.length, 'packet-counts', `write ${w}: packetCounts ${packetCounts[w]} != ${m.length}`));
  }
  // Every write must be a frame the read side accepts; for clean batches,
  // splitting it gives back exactly its original packets.
  for (const [w, v] of writes.entries()) {
    if (v.length === 2) {
      if (batch.clean) check(equalBytes(v[1]!, pristine[members[w]![0]!]!), 'roundtrip', `write ${w}: single packet changed`);
      continue;
    }
    const frameBytes = concat(v);
    const segs = outcome('segment(coalesced)', () => segment(frameBytes));
    check(!(segs instanceof VectunError), 'roundtrip', `write ${w}: segment() rejects a coalesced write: ${segs instanceof VectunError ? segs.code : ''}`);
    const got = segs as Uint8Array[];
    check(got.length === members[w]!.length, 'roundtrip', `write ${w}: ${got.length} segments for ${members[w]!.length} packets`);
    if (batch.clean) {
      // Vector order is sequence order (mod 2^32) from the head on.
      const base = seqOf(got[0]!);
      const want = members[w]!.map((i) => pristine[i]!).sort((x, y) => ((seqOf(x) - base) >>> 0) - ((seqOf(y) - base) >>> 0));
      for (let k = 0; k < got.length; k++) {
        check(equalBytes(got[k]!, d4(want[k]!)), 'roundtrip', `write ${w}: segment ${k} differs from the original packet: ${firstDiff(got[k]!, d4(want[k]!))}`);
      }
      report.roundTrips++;
    }
  }
}

/**
 * The packet as the read side must return it: a UDP checksum that computes to
 * 0 (stored as 0x0000 by the test builder) comes back as 0xFFFF (D-4).
 */
function d4(p: Uint8Array): Uint8Array {
  const iph = p[0]! >> 4 === 4 ? 20 : 40;
  if ((iph === 20 ? p[9] : p[6]) !== 17 || p[iph + 6] !== 0 || p[iph + 7] !== 0) return p;
  const q = p.slice();
  q[iph + 6] = q[iph + 7] = 0xff;
  return q;
}

function firstDiff(a: Uint8Array, b: Uint8Array): string {
  if (a.length !== b.length) return `lengths ${a.length} vs ${b.length}`;
  const i = a.findIndex((x, k) => x !== b[k]);
  return `byte ${i}: ${a[i]} vs ${b[i]}`;
}

function seqOf(p: Uint8Array): number {
  const iph = p[0]! >> 4 === 4 ? 20 : 40;
  const tcp = (iph === 20 ? p[9] : p[6]) === 6;
  return tcp ? ((p[iph + 4]! << 24) | (p[iph + 5]! << 16) | (p[iph + 6]! << 8) | p[iph + 7]!) >>> 0 : 0;
}

// ------------------------------------------------------------ driver

function runCase(caseSeed: number, report: FuzzReport): void {
  const r = prng(caseSeed);
  if (r(2) === 0) {
    report.segmentCases++;
    fuzzSegment(randomFrame(r), report);
  } else {
    report.coalesceCases++;
    fuzzCoalesce(r, report);
  }
}

/** Runs the fuzzer; never throws for a finding, reports it instead. */
export function runFuzz(o: FuzzOptions = {}): FuzzReport {
  const report: FuzzReport = { cases: 0, segmentCases: 0, coalesceCases: 0, segmentErrors: 0, roundTrips: 0, seconds: 0 };
  return runCases(o, 0, report, (cs) => runCase(cs, report));
}

function main(): void {
  const argv = process.argv.slice(2);
  const num = (name: string): number | undefined => {
    const i = argv.indexOf(name);
    if (i < 0) return undefined;
    const n = Number(argv[i + 1]);
    if (!Number.isInteger(n) || n < 0) {
      process.stderr.write(`${name} needs a non-negative integer\n`);
      process.exit(2);
    }
    return n;
  };
  const seed = num('--seed') ?? 1;
  const count = num('--count') ?? 500;
  const seconds = num('--seconds') ?? 30;
  const caseSeed = num('--case');
  const ti = argv.indexOf('--target');
  const target = ti >= 0 ? argv[ti + 1] : 'all';
  if (target !== 'all' && target !== 'core' && target !== 'wg') {
    process.stderr.write('--target must be core, wg or all\n');
    process.exit(2);
  }
  if (target !== 'core') {
    const wg = runWgFuzz({ seed, count, seconds, ...(caseSeed !== undefined ? { caseSeed } : {}) });
    const wgSummary =
      `wg: ${wg.cases} cases in ${wg.seconds.toFixed(1)} s (parse ${wg.parseCases}, initiation ${wg.initiationCases}, response ${wg.responseCases}, ` +
      `cookie ${wg.cookieCases}, lookup ${wg.lookupCases}; mutated handshakes rejected ${wg.rejected}, accepted ${wg.accepted}), seed ${seed}`;
    if (wg.violation) {
      const v = wg.violation;
      process.stderr.write(`VIOLATION ${v.kind}: ${v.message}\nafter ${wgSummary}\nreproduce: node dist/fuzz/run.js --target wg --case ${v.caseSeed}\n`);
      process.exit(1);
    }
    process.stdout.write(`ok: ${wgSummary}\n`);
    if (target === 'wg') return;
  }
  const report = runFuzz({ seed, count, seconds, ...(caseSeed !== undefined ? { caseSeed } : {}) });
  const summary =
    `${report.cases} cases in ${report.seconds.toFixed(1)} s (segment ${report.segmentCases}, of which rejected ${report.segmentErrors}; ` +
    `coalesce ${report.coalesceCases}, round trips ${report.roundTrips}), seed ${seed}`;
  if (report.violation) {
    const v = report.violation;
    process.stderr.write(`VIOLATION ${v.kind}: ${v.message}\nafter ${summary}\nreproduce: node dist/fuzz/run.js --case ${v.caseSeed}\n`);
    process.exit(1);
  }
  process.stdout.write(`ok: ${summary}\n`);
}

if (require.main === module) main();
