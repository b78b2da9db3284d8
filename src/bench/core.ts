/**
 * Offload-core micro benchmarks (issue #3): the six workloads, each measured
 * with packets in plain `Uint8Array`s (the general API) and in an
 * {@link Arena} (the device path), next to a plain checksum pass over the same
 * bytes in the same memory, measured in the same run.
 *
 * (a) coalesce 128 TCPv4 segments of one flow, 1448-byte payloads
 * (b) 128 TCPv4 segments across 8 interleaved flows
 * (c) 128 UDPv4 datagrams of 1200 bytes, one flow, UDP GRO on
 * (d) 128 non-coalescable packets (128 distinct flows)
 * (e) segment one 64 KiB TCPv4 super-packet, gso_size 1448
 * (f) segment one 64 KiB UDPv4 super-packet, gso_size 1200
 *
 * Coalescing rewrites head packets in place (PIT-2), so before every timed
 * batch the first 64 bytes of each packet (all headers) are copied back from
 * a pristine copy; the copy is OUTSIDE the timed region (each batch is timed
 * on its own with `process.hrtime.bigint`, ~50 ns of timer cost per batch,
 * included). GSO split leaves its input unchanged and needs no restore.
 * @module
 */
import { Arena } from '../core/arena.js';
import { checksumSum, pseudoHeaderSumFor, writeIPv4HeaderChecksum } from '../core/checksum.js';
import { Coalescer, coalesce } from '../core/gro.js';
import { Segmenter, segment, segmentInto } from '../core/gso.js';
import { GSO_TCPV4, GSO_UDP_L4, VNET_HDR_LEN } from '../core/virtio.js';

/**
 * Reference figures in µs per batch: wireguard-go as timed by the independent
 * harness of issue #10 (2-core VM), the Tailscale AVX2 peer from issue #3.
 */
export const REFERENCE_US: Record<WorkloadId, { wireguardGo: number; tailscaleAvx2?: number }> = {
  a: { wireguardGo: 29.0, tailscaleAvx2: 18 },
  b: { wireguardGo: 28.4, tailscaleAvx2: 20 },
  c: { wireguardGo: 27.4, tailscaleAvx2: 18 },
  d: { wireguardGo: 21.5 },
  e: { wireguardGo: 7.1, tailscaleAvx2: 5.7 },
  f: { wireguardGo: 8.6, tailscaleAvx2: 6.4 },
};

/** What issue #10's harness measured for the free functions before this work (µs). */
export const ISSUE10_BEFORE_US: Record<WorkloadId, number> = { a: 34.3, b: 35.8, c: 32.2, d: 19.9, e: 14.6, f: 14.5 };

export type WorkloadId = 'a' | 'b' | 'c' | 'd' | 'e' | 'f';

/**
 * Where the packets live and which call runs. `plain`: ordinary
 * `Uint8Array`s through the free functions a user reaches for first,
 * `coalesce(packets)` and `segment(frame)` (fresh memory per call).
 * `plain-fast`: the same inputs through the reusable forms,
 * `Coalescer#coalesce` and `Segmenter#segment` (recycled output, valid until
 * the next call). `plain-reused`: GSO only, `segmentInto` from a plain frame
 * into one plain output area reused across calls. `arena`: inputs in one
 * arena; for GSO the output area is in the same arena (fused copy + checksum;
 * src/device/tun.ts). `arena2`: GSO only, frame and output in two arenas.
 */
export type MemoryKind = 'plain' | 'plain-fast' | 'plain-reused' | 'arena' | 'arena2';

export interface CoreBenchOptions {
  /** Workloads to run; default all. */
  workloads?: readonly WorkloadId[];
  /** Memory kinds; default plain, plain-fast and arena (+ arena2 for e and f); `plain-reused` on request. */
  memory?: readonly MemoryKind[];
  /** Timed batches per repeat; default 1000. */
  batches?: number;
  /** Repeats; the median repeat is reported. Default 7. */
  repeats?: number;
  onProgress?: (line: string) => void;
}

export interface CoreBenchResult {
  workload: WorkloadId;
  description: string;
  memory: MemoryKind;
  /** What was called: `coalesce`, `Coalescer#coalesce`, `segment`, `Segmenter#segment` or `segmentInto`. */
  api: string;
  /**
   * Which figure this is: `issue` for the free functions on plain memory
   * (issue #10's harness), `fast` for their reusable forms on plain memory,
   * `device` for the layout the TUN device uses (one arena), else `other`.
   */
  role: 'issue' | 'fast' | 'device' | 'other';
  packets: number;
  /** Transport payload bytes per batch. */
  payloadBytes: number;
  /** Output per batch: writes (GRO) or segments (GSO); a sanity figure. */
  outputs: number;
  /** Median over repeats of the mean time per batch. */
  usPerBatch: number;
  /** Fastest repeat. */
  usPerBatchMin: number;
  payloadGBps: number;
  /** A CK-1 pass over the same input bytes in the same memory kind, same run. */
  checksumUs: number;
  /** usPerBatch / checksumUs. */
  ratioToChecksum: number;
  /**
   * `segment` only: allocating a fresh `Uint8Array` of the output's size,
   * copying the output into it from warm memory and making the same views,
   * same run: what segment() costs without the split itself, i.e. the part
   * of the figure that fresh (garbage-collected, cache-cold) memory costs.
   */
  allocCopyUs?: number;
  reference: { wireguardGo: number; tailscaleAvx2?: number };
  beatsWireguardGo: boolean;
  beatsTailscaleAvx2?: boolean;
}

const DESCRIPTIONS: Record<WorkloadId, string> = {
  a: 'coalesce 128 TCPv4 segments, one flow, 1448 B payloads',
  b: 'coalesce 128 TCPv4 segments, 8 interleaved flows',
  c: 'coalesce 128 UDPv4 datagrams of 1200 B, one flow (udp: true)',
  d: 'coalesce 128 non-coalescable packets (128 flows)',
  e: 'segment one 64 KiB TCPv4 super-packet, gso_size 1448',
  f: 'segment one 64 KiB UDPv4 super-packet, gso_size 1200',
};

const SRC = [198, 18, 0, 1];
const DST = [198, 18, 0, 2];

/** One IPv4 packet with valid checksums (IP header 20, TCP 20 or UDP 8). */
function ipv4(proto: 'tcp' | 'udp', payload: number, srcPort: number, seq: number): Uint8Array {
  const thLen = proto === 'tcp' ? 20 : 8;
  const total = 20 + thLen + payload;
  const p = new Uint8Array(total);
  p[0] = 0x45;
  p[2] = total >> 8;
  p[3] = total & 0xff;
  p[6] = 0x40; // DF
  p[8] = 64;
  p[9] = proto === 'tcp' ? 6 : 17;
  p.set(SRC, 12);
  p.set(DST, 16);
  writeIPv4HeaderChecksum(p);
  p[20] = srcPort >> 8;
  p[21] = srcPort & 0xff;
  p[23] = 80;
  if (proto === 'tcp') {
    p[24] = seq >>> 24;
    p[25] = (seq >>> 16) & 0xff;
    p[26] = (seq >>> 8) & 0xff;
    p[27] = seq & 0xff;
    p[31] = 1; // ack
    p[32] = 0x50;
    p[33] = 0x10; // ACK
    p[34] = 0xff;
    p[35] = 0xff;
  } else {
    p[24] = (8 + payload) >> 8;
    p[25] = (8 + payload) & 0xff;
  }
  for (let i = 20 + thLen; i < total; i++) p[i] = (i * 7 + seq) & 0xff;
  const at = 20 + (proto === 'tcp' ? 16 : 6);
  const c = ~checksumSum(p, 20, total, pseudoHeaderSumFor(p, p[9]!, total - 20)) & 0xffff;
  p[at] = c >> 8;
  p[at + 1] = c & 0xff;
  return p;
}

function batch(id: 'a' | 'b' | 'c' | 'd'): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (let i = 0; i < 128; i++) {
    if (id === 'a') out.push(ipv4('tcp', 1448, 1000, 1 + i * 1448));
    else if (id === 'b') out.push(ipv4('tcp', 1448, 1000 + (i % 8), 1 + Math.floor(i / 8) * 1448));
    else if (id === 'c') out.push(ipv4('udp', 1200, 1000, 0));
    else out.push(ipv4('tcp', 1448, 1000 + i, 1));
  }
  return out;
}

/** A `[vnet header | super-packet]` frame as the kernel delivers it (partial checksum). */
function superFrame(id: 'e' | 'f'): Uint8Array {
  const tcp = id === 'e';
  const gso = tcp ? 1448 : 1200;
  const segs = tcp ? 45 : 54; // 65200 and 64828 bytes: a full 64 KiB TSO/USO burst
  const p = ipv4(tcp ? 'tcp' : 'udp', gso * segs, 1000, 1);
  const at = 20 + (tcp ? 16 : 6);
  const partial = pseudoHeaderSumFor(p, p[9]!, p.length - 20);
  p[at] = partial >> 8;
  p[at + 1] = partial & 0xff;
  const f = new Uint8Array(VNET_HDR_LEN + p.length);
  f[0] = 1; // NEEDS_CSUM
  f[1] = tcp ? GSO_TCPV4 : GSO_UDP_L4;
  const hdrLen = tcp ? 40 : 28;
  f[2] = hdrLen;
  f[4] = gso & 0xff;
  f[5] = gso >> 8;
  f[6] = 20;
  f[8] = tcp ? 16 : 6;
  f.set(p, VNET_HDR_LEN);
  return f;
}

/**
 * The pristine input of workload `id`: 128 packets (a-d) or one
 * `[vnet header | super-packet]` frame (e, f). Fresh arrays on every call.
 */
export function workloadInput(id: WorkloadId): Uint8Array[] {
  return id === 'e' || id === 'f' ? [superFrame(id)] : batch(id);
}

function median(xs: number[]): number {
  const s = [...xs].sort((x, y) => x - y);
  return s[Math.floor(s.length / 2)]!;
}

/**
 * Runs `fn` `batches` times per repeat, timing each call alone; `before` runs
 * untimed. `warmup` untimed calls come first (default max(50, batches / 4)).
 */
function measure(
  batches: number,
  repeats: number,
  fn: () => number,
  before?: () => void,
  warmup = Math.max(50, batches >> 2),
): { median: number; min: number; outputs: number } {
  let outputs = 0;
  for (let i = 0; i < warmup; i++) {
    before?.();
    outputs = fn();
  }
  const means: number[] = [];
  for (let r = 0; r < repeats; r++) {
    let ns = 0n;
    for (let i = 0; i < batches; i++) {
      before?.();
      const t = process.hrtime.bigint();
      outputs = fn();
      ns += process.hrtime.bigint() - t;
    }
    means.push(Number(ns) / batches / 1000);
  }
  return { median: median(means), min: Math.min(...means), outputs };
}

/** Copies `packets` into a fresh arena (2 KiB or 64 KiB + 64 slots) and returns views. */
function intoArena(packets: readonly Uint8Array[], extra = 0): { arena: Arena; views: Uint8Array[]; end: number } {
  const slot = packets[0]!.length <= 2048 ? 2048 : 65600;
  const arena = new Arena(slot * packets.length + extra);
  const views = packets.map((p, i) => {
    arena.bytes.set(p, i * slot + 64);
    return arena.bytes.subarray(i * slot + 64, i * slot + 64 + p.length);
  });
  return { arena, views, end: slot * packets.length };
}

/** A measured call splitting `frame` into `area` with `segmentInto`, reusing `out`; returns the segment count. */
function splitInto(frame: Uint8Array, area: Uint8Array, out: Uint8Array[]): () => number {
  return () => {
    out.length = 0;
    segmentInto(frame, area, out);
    return out.length;
  };
}

/** Runs the workloads and returns one result per (workload, memory kind). */
export function runCoreBenchmarks(options: CoreBenchOptions = {}): CoreBenchResult[] {
  const ids = options.workloads ?? (['a', 'b', 'c', 'd', 'e', 'f'] as const);
  const kinds = options.memory ?? (['plain', 'plain-fast', 'arena', 'arena2'] as const);
  const batches = options.batches ?? 1000;
  const repeats = options.repeats ?? 7;
  const results: CoreBenchResult[] = [];

  for (const id of ids) {
    const gso = id === 'e' || id === 'f';
    const pristine = gso ? [superFrame(id)] : batch(id);
    const payloadBytes = gso
      ? pristine[0]!.length - VNET_HDR_LEN - (id === 'e' ? 40 : 28)
      : pristine.reduce((n, p) => n + p.length - (id === 'c' ? 28 : 40), 0);
    for (const kind of kinds) {
      if ((kind === 'arena2' || kind === 'plain-reused') && !gso) continue;
      let packets: Uint8Array[];
      let fn: () => number;
      let before: (() => void) | undefined;
      let api: string;
      if (gso) {
        const frame = pristine[0]!;
        const out: Uint8Array[] = [];
        if (kind === 'plain') {
          packets = [frame.slice()];
          api = 'segment';
          fn = () => segment(packets[0]!).length;
        } else if (kind === 'plain-fast') {
          packets = [frame.slice()];
          const splitter = new Segmenter();
          api = 'Segmenter#segment';
          fn = () => splitter.segment(packets[0]!).length;
        } else if (kind === 'plain-reused') {
          packets = [frame.slice()];
          api = 'segmentInto';
          fn = splitInto(packets[0]!, new Uint8Array(2 * 65600), out);
        } else {
          const { arena, views, end } = intoArena([frame], 2 * 65600 + 65536);
          packets = views;
          api = 'segmentInto';
          fn = splitInto(packets[0]!, kind === 'arena' ? arena.bytes.subarray(end) : new Arena(2 * 65600).bytes, out);
        }
      } else {
        packets = kind === 'arena' ? intoArena(pristine).views : pristine.map((p) => p.slice());
        if (kind === 'plain') {
          const udp = id === 'c';
          api = 'coalesce';
          fn = () => coalesce(packets, { udp }).length;
        } else {
          const c = new Coalescer({ tcp: true, udp: id === 'c' });
          api = 'Coalescer#coalesce';
          fn = () => c.coalesce(packets).writes.length;
        }
        before = () => {
          for (let i = 0; i < packets.length; i++) packets[i]!.set(pristine[i]!.subarray(0, 64));
        };
      }
      const m = measure(batches, repeats, fn, before);
      // Baseline: one CK-1 pass over every input byte, same memory, same run.
      const ck = measure(batches, repeats, () => {
        let s = 0;
        for (let i = 0; i < packets.length; i++) s += checksumSum(packets[i]!, 0, packets[i]!.length, 0);
        return s & 1;
      });
      let allocCopyUs: number | undefined;
      if (api === 'segment') {
        // segment()'s allocations without its split: the same buffer size,
        // copy and views (the views pace the garbage collector alike).
        const sizes = segment(packets[0]!).map((p) => p.length);
        const bytes = sizes.reduce((n, k) => n + k, 0);
        const warm = new Uint8Array(bytes).fill(0x5a);
        allocCopyUs = measure(batches, repeats, () => {
          const fresh = new Uint8Array(bytes);
          fresh.set(warm);
          const views: Uint8Array[] = [];
          for (let i = 0, at = 0; i < sizes.length; at += sizes[i]!, i++) views.push(new Uint8Array(fresh.buffer, at, sizes[i]!));
          return views.length;
        }).median;
      }
      const ref = REFERENCE_US[id];
      const r: CoreBenchResult = {
        workload: id,
        description: DESCRIPTIONS[id],
        memory: kind,
        api,
        role: kind === 'plain' ? 'issue' : kind === 'plain-fast' ? 'fast' : kind === 'arena' ? 'device' : 'other',
        packets: gso ? 1 : packets.length,
        payloadBytes,
        outputs: m.outputs,
        usPerBatch: m.median,
        usPerBatchMin: m.min,
        payloadGBps: payloadBytes / (m.median * 1000),
        checksumUs: ck.median,
        ratioToChecksum: m.median / ck.median,
        reference: ref,
        beatsWireguardGo: m.median < ref.wireguardGo,
      };
      if (allocCopyUs !== undefined) r.allocCopyUs = allocCopyUs;
      if (ref.tailscaleAvx2 !== undefined) r.beatsTailscaleAvx2 = m.median < ref.tailscaleAvx2;
      results.push(r);
      options.onProgress?.(`${id} ${kind}: ${m.median.toFixed(2)} us`);
    }
  }
  return results;
}

/** One row of {@link runColdCoreBenchmark}. */
export interface ColdBenchResult {
  workload: WorkloadId;
  /** `free`: `coalesce()` / `segment()`; `fast`: `Coalescer#coalesce` / `Segmenter#segment`. */
  form: 'free' | 'fast';
  api: string;
  /** The very first call in this process (includes compiling the WebAssembly module). */
  firstUs: number;
  /** Mean of calls 2..10. */
  next9Us: number;
  /**
   * `vectun bench`'s short run: after 50 untimed calls in all (the 10 above
   * included), the median of 3 repeats of the mean of 200 calls.
   */
  shortRunUs: number;
  /** The same checksum baseline as {@link CoreBenchResult.checksumUs}, measured warm in the same process. */
  checksumUs: number;
  reference: { wireguardGo: number };
}

/**
 * Cold figures for one workload on plain memory: meaningful only as the first
 * thing a fresh process does (bench/cold.ts runs it in a child process per
 * measurement). Same inputs and input restore as {@link runCoreBenchmarks}.
 */
export function runColdCoreBenchmark(id: WorkloadId, form: 'free' | 'fast'): ColdBenchResult {
  const gso = id === 'e' || id === 'f';
  const pristine = workloadInput(id);
  const packets = pristine.map((p) => p.slice());
  let fn: () => number;
  let before: (() => void) | undefined;
  let api: string;
  if (gso) {
    if (form === 'free') {
      api = 'segment';
      fn = () => segment(packets[0]!).length;
    } else {
      const splitter = new Segmenter();
      api = 'Segmenter#segment';
      fn = () => splitter.segment(packets[0]!).length;
    }
  } else {
    const udp = id === 'c';
    if (form === 'free') {
      api = 'coalesce';
      fn = () => coalesce(packets, { udp }).length;
    } else {
      const c = new Coalescer({ tcp: true, udp });
      api = 'Coalescer#coalesce';
      fn = () => c.coalesce(packets).writes.length;
    }
    before = () => {
      for (let i = 0; i < packets.length; i++) packets[i]!.set(pristine[i]!.subarray(0, 64));
    };
  }
  const times: number[] = [];
  for (let i = 0; i < 10; i++) {
    before?.();
    const t = process.hrtime.bigint();
    fn();
    times.push(Number(process.hrtime.bigint() - t) / 1000);
  }
  const short = measure(200, 3, fn, before, 40);
  const ck = measure(1000, 5, () => {
    let sum = 0;
    for (let i = 0; i < packets.length; i++) sum += checksumSum(packets[i]!, 0, packets[i]!.length, 0);
    return sum & 1;
  });
  return {
    workload: id,
    form,
    api,
    firstUs: times[0]!,
    next9Us: times.slice(1).reduce((a, b) => a + b, 0) / 9,
    shortRunUs: short.median,
    checksumUs: ck.median,
    reference: { wireguardGo: REFERENCE_US[id].wireguardGo },
  };
}

/** One row of {@link runChecksumBenchmarks}. */
export interface ChecksumBenchResult {
  /** What was summed and how. */
  case: string;
  bytes: number;
  /** Median ns per call. */
  nsPerCall: number;
  gbps: number;
}

/**
 * The CK-1 primitive alone: per-call cost on packet-sized runs (GRO calls it
 * once per packet) and throughput on 64 KiB, for a view in an arena
 * (`checksumSum`), an absolute arena offset (`Arena.sum`) and a plain
 * `Uint8Array` (copied into a scratch arena first). 128 distinct packets per
 * round, as in a batch.
 */
export function runChecksumBenchmarks(options: { rounds?: number; repeats?: number } = {}): ChecksumBenchResult[] {
  const rounds = options.rounds ?? 2000;
  const repeats = options.repeats ?? 7;
  const results: ChecksumBenchResult[] = [];
  for (const bytes of [1468, 65536]) {
    const count = bytes > 2048 ? 16 : 128;
    const slot = bytes > 2048 ? 65536 + 64 : 2048;
    const arena = new Arena(count * slot);
    const views: Uint8Array[] = [];
    const plain: Uint8Array[] = [];
    for (let i = 0; i < count; i++) {
      const p = new Uint8Array(bytes);
      for (let k = 0; k < bytes; k++) p[k] = (k * 131 + i) & 0xff;
      plain.push(p);
      arena.bytes.set(p, i * slot);
      views.push(arena.bytes.subarray(i * slot, i * slot + bytes));
    }
    const sum = arena.sum;
    const cases: [string, () => number][] = [
      ['checksumSum, view in an arena', () => {
        let s = 0;
        for (let i = 0; i < count; i++) s += checksumSum(views[i]!, 0, bytes, 0);
        return s;
      }],
      ['Arena.sum, absolute offset', () => {
        let s = 0;
        for (let i = 0; i < count; i++) s += sum(i * slot, bytes, 0);
        return s;
      }],
      ['checksumSum, plain Uint8Array', () => {
        let s = 0;
        for (let i = 0; i < count; i++) s += checksumSum(plain[i]!, 0, bytes, 0);
        return s;
      }],
    ];
    for (const [name, fn] of cases) {
      const per = Math.max(10, Math.floor((rounds * 128) / count / (bytes > 2048 ? 8 : 1)));
      const m = measure(per, repeats, fn);
      const ns = (m.median * 1000) / count;
      results.push({ case: name, bytes, nsPerCall: ns, gbps: bytes / ns });
    }
  }
  return results;
}
