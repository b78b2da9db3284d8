import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Arena } from '../../src/core/arena.js';
import { checksumSum, transportChecksumValid } from '../../src/core/checksum.js';
import { SEGMENT_OUTPUT_LIMIT, Segmenter, segment, segmentInto } from '../../src/core/gso.js';
import {
  GSO_NONE,
  GSO_TCPV4,
  GSO_TCPV6,
  GSO_UDP_L4,
  VNET_F_DATA_VALID,
  VNET_F_NEEDS_CSUM,
  type GsoType,
  type VirtioNetHeader,
} from '../../src/core/virtio.js';
import {
  TCP_ACK,
  TCP_CWR,
  TCP_ECE,
  TCP_FIN,
  TCP_PSH,
  TCP_URG,
  V4,
  V6,
  buildPacket,
  frame,
  patternPayload,
  type PacketOptions,
} from './packets.js';
import { referenceSegment, slowSum } from './gso-reference.js';
import { errorCode } from '../error-code.js';

// ---------------------------------------------------------------- helpers

const arena = new Arena(8 << 20);
const arena2 = new Arena(8 << 20); // the device's layout: output in another arena
const FRAME_AT = 64; // frame slot in the arena
const OUT_AT = 1 << 20; // output region in the same arena

interface GsoOpts extends Omit<PacketOptions, 'payload'> {
  payload: number;
  gsoSize: number;
  gsoType?: number;
  needsCsum?: boolean;
  /** The kernel's hdr_len; defaults to the true header length. */
  hdrLen?: number;
}

/** A super-packet frame as the kernel hands it over: partial checksum in the field (HDR-3). */
function superFrame(o: GsoOpts): { frame: Uint8Array; packet: Uint8Array; header: VirtioNetHeader } {
  const packet = buildPacket({ ...o, payload: o.payload });
  const iphLen = o.version === 4 ? 20 : 40;
  const thLen = o.proto === 'tcp' ? 20 + (o.options?.length ?? 0) : 8;
  const off = o.proto === 'tcp' ? 16 : 6;
  // Partial checksum: the pseudo-header sum over the whole transport length.
  const pseudo = slowSum(packet, o.version === 4 ? 12 : 8, o.version === 4 ? 20 : 40, (o.proto === 'tcp' ? 6 : 17) + packet.length - iphLen);
  packet[iphLen + off] = pseudo >> 8;
  packet[iphLen + off + 1] = pseudo & 0xff;
  const header: VirtioNetHeader = {
    needsCsum: o.needsCsum ?? true,
    gsoType: (o.gsoType ?? (o.proto === 'udp' ? GSO_UDP_L4 : o.version === 4 ? GSO_TCPV4 : GSO_TCPV6)) as GsoType,
    hdrLen: o.hdrLen ?? iphLen + thLen,
    gsoSize: o.gsoSize,
    csumStart: iphLen,
    csumOffset: off,
  };
  return { frame: frame(header, packet), packet, header };
}

/** The segments RD-9 must produce for a well-formed frame, built independently. */
function expectedSegments(o: GsoOpts): Uint8Array[] {
  const full = patternPayload(o.payload, o.fill ?? ((o.seq ?? 0) & 0xff));
  const out: Uint8Array[] = [];
  const flags = o.flags ?? TCP_ACK;
  for (let i = 0, at = 0; at < o.payload; i++, at += o.gsoSize) {
    const last = at + o.gsoSize >= o.payload;
    out.push(
      buildPacket({
        ...o,
        payload: full.subarray(at, Math.min(at + o.gsoSize, o.payload)),
        seq: ((o.seq ?? 1) + i * o.gsoSize) >>> 0,
        flags: last ? flags : flags & ~(TCP_FIN | TCP_PSH),
        ipId: ((o.ipId ?? 0x1234) + i) & 0xffff,
      }),
    );
  }
  return out;
}

type Path = 'segment' | 'segmenter' | 'plain-out' | 'arena-fused' | 'frame-in-arena' | 'two-arenas' | 'plain-frame-arena-out';
const PATHS: Path[] = ['segment', 'segmenter', 'plain-out', 'arena-fused', 'frame-in-arena', 'two-arenas', 'plain-frame-arena-out'];
// One instance for every test: each frame reuses the output area and views of the one before.
const splitter = new Segmenter();

/** Runs one frame through one API path; returns the packets as fresh copies. */
function run(f: Uint8Array, path: Path): Uint8Array[] {
  if (path === 'segment') return segment(f);
  if (path === 'segmenter') return splitter.segment(f).map((p) => p.slice());
  const packets: Uint8Array[] = [];
  let input = f;
  if (path !== 'plain-out' && path !== 'plain-frame-arena-out') {
    arena.bytes.set(f, FRAME_AT);
    input = arena.bytes.subarray(FRAME_AT, FRAME_AT + f.length);
  }
  // Plain output at a nonzero offset in its buffer: views must carry it.
  const out =
    path === 'arena-fused'
      ? arena.bytes.subarray(OUT_AT)
      : path === 'two-arenas' || path === 'plain-frame-arena-out'
        ? arena2.bytes.subarray(16)
        : new Uint8Array(7 << 20).subarray(24);
  const used = segmentInto(input, out, packets);
  // D-5 / contract: contiguous from out[0], `used` bytes in all.
  let at = 0;
  for (const p of packets) {
    assert.equal(p.buffer, out.buffer);
    assert.equal(p.byteOffset, out.byteOffset + at, 'segments are contiguous');
    at += p.length;
  }
  assert.equal(used, at, 'returned byte count');
  if (input !== f) assert.deepEqual(input, f, 'frame in the arena left unchanged');
  return packets.map((p) => p.slice());
}

/** Runs every path, checks they agree with each other and the reference model, and that the input is untouched. */
function segmentAll(f: Uint8Array): Uint8Array[] {
  const before = f.slice();
  const ref = referenceSegment(f);
  let first: Uint8Array[] | undefined;
  for (const path of PATHS) {
    const got = run(f, path);
    assert.deepEqual(f, before, `${path}: frame unchanged`);
    if ('code' in ref) assert.fail(`reference rejects with ${ref.code}`);
    assert.deepEqual(got, ref.packets, `${path}: equals the reference model`);
    first ??= got;
  }
  return first!;
}


/** Asserts every path rejects `f` with `code` and delivers nothing. */
function rejects(f: Uint8Array, code: string): void {
  const ref = referenceSegment(f);
  assert.deepEqual(ref, { code }, 'reference model agrees');
  for (const path of PATHS) {
    if (path === 'segment') {
      assert.equal(errorCode(() => segment(f)), code, path);
      continue;
    }
    if (path === 'segmenter') {
      assert.equal(errorCode(() => splitter.segment(f)), code, path);
      continue;
    }
    const packets: Uint8Array[] = [];
    const out = path === 'arena-fused' ? arena.bytes.subarray(OUT_AT) : new Uint8Array(1 << 20);
    let input = f;
    if (path !== 'plain-out') {
      arena.bytes.set(f, FRAME_AT);
      input = arena.bytes.subarray(FRAME_AT, FRAME_AT + f.length);
    }
    assert.equal(errorCode(() => segmentInto(input, out, packets)), code, path);
    assert.equal(packets.length, 0, `${path}: no packet delivered`);
  }
}

const u16 = (p: Uint8Array, at: number): number => (p[at]! << 8) | p[at + 1]!;
const u32 = (p: Uint8Array, at: number): number => ((p[at]! << 24) | (p[at + 1]! << 16) | (p[at + 2]! << 8) | p[at + 3]!) >>> 0;
const setLE16 = (f: Uint8Array, at: number, v: number): void => {
  f[at] = v & 0xff;
  f[at + 1] = v >> 8;
};

function assertValid(p: Uint8Array): void {
  const v4 = p[0]! >> 4 === 4;
  const iphLen = v4 ? (p[0]! & 0xf) * 4 : 40;
  if (v4) assert.equal(~checksumSum(p, 0, iphLen, 0) & 0xffff, 0, 'IPv4 header checksum verifies (CK-5)');
  const proto = v4 ? p[9]! : p[6]!;
  assert.ok(transportChecksumValid(p, iphLen, proto), 'transport checksum verifies (CK-4)');
  if (v4) assert.equal(u16(p, 2), p.length, 'IPv4 total length');
  else assert.equal(u16(p, 4), p.length - 40, 'IPv6 payload length');
}

/** Makes the transport checksum of `p` come out as 0x0000 by tuning two payload bytes (CK-3). */
function tuneForZeroChecksum(p: Uint8Array, iphLen: number, proto: number, at: number): void {
  const field = iphLen + (proto === 6 ? 16 : 6);
  p[field] = 0;
  p[field + 1] = 0;
  p[at] = 0;
  p[at + 1] = 0;
  const pseudo = slowSum(p, p[0]! >> 4 === 4 ? 12 : 8, p[0]! >> 4 === 4 ? 20 : 40, proto + p.length - iphLen);
  const s = slowSum(p, iphLen, p.length, pseudo);
  const w = 0xffff - s; // makes the sum exactly 0xFFFF, so ~sum = 0
  p[at] = w >> 8;
  p[at + 1] = w & 0xff;
}

// ------------------------------------------------------ TS-1..TS-14 table

interface Scenario {
  name: string;
  opts: GsoOpts;
  lengths: number[];
  check?: (segs: Uint8Array[]) => void;
}

const T4: Omit<GsoOpts, 'payload' | 'gsoSize'> = { version: 4, proto: 'tcp', src: V4.A, dst: V4.B, seq: 1, flags: TCP_ACK | TCP_PSH };
const T6: Omit<GsoOpts, 'payload' | 'gsoSize'> = { version: 6, proto: 'tcp', src: V6.A, dst: V6.B, seq: 1, flags: TCP_ACK | TCP_PSH };
const U4: Omit<GsoOpts, 'payload' | 'gsoSize'> = { version: 4, proto: 'udp', src: V4.A, dst: V4.B };
const U6: Omit<GsoOpts, 'payload' | 'gsoSize'> = { version: 6, proto: 'udp', src: V6.A, dst: V6.B };

const scenarios: Scenario[] = [
  {
    name: 'TS-1 (RD-9) TCPv4 payload 200 gso 100: 2 x 140, seq 1/101, PSH on the 2nd only, ID/ID+1',
    opts: { ...T4, payload: 200, gsoSize: 100, hdrLen: 40 },
    lengths: [140, 140],
    check: (s) => {
      assert.deepEqual(s.map((p) => u32(p, 24)), [1, 101]);
      assert.deepEqual(s.map((p) => p[33]! & TCP_PSH), [0, TCP_PSH]);
      assert.deepEqual(s.map((p) => u16(p, 4)), [0x1234, 0x1235]);
    },
  },
  {
    name: 'TS-2 (RD-9) TCPv6 payload 200 gso 100: 2 x 160, payload length 120',
    opts: { ...T6, payload: 200, gsoSize: 100 },
    lengths: [160, 160],
    check: (s) => assert.deepEqual(s.map((p) => u16(p, 4)), [120, 120]),
  },
  {
    name: 'TS-3 (RD-9) UDP_L4 over IPv4 payload 200 gso 100: 2 x 128, UDP length 108',
    opts: { ...U4, payload: 200, gsoSize: 100 },
    lengths: [128, 128],
    check: (s) => assert.deepEqual(s.map((p) => u16(p, 24)), [108, 108]),
  },
  {
    name: 'TS-4 (RD-9) UDP_L4 over IPv6 payload 200 gso 100: 2 x 148',
    opts: { ...U6, payload: 200, gsoSize: 100 },
    lengths: [148, 148],
    check: (s) => assert.deepEqual(s.map((p) => u16(p, 44)), [108, 108]),
  },
  {
    name: 'TS-5 (RD-9) TCPv4 payload 250 ACK|PSH|FIN: 140, 140, 90 with FIN/PSH only on the last',
    opts: { ...T4, payload: 250, gsoSize: 100, flags: TCP_ACK | TCP_PSH | TCP_FIN },
    lengths: [140, 140, 90],
    check: (s) => assert.deepEqual(s.map((p) => p[33]), [TCP_ACK, TCP_ACK, TCP_ACK | TCP_PSH | TCP_FIN]),
  },
  {
    name: 'TS-6 (RD-9) payload exactly gso_size: one packet via the split path',
    opts: { ...T4, payload: 100, gsoSize: 100 },
    lengths: [140],
  },
  {
    name: 'TS-7 (RD-6, RD-9) TCPv4 payload 50 < gso 100 with NEEDS_CSUM: one full-checksum packet',
    opts: { ...T4, payload: 50, gsoSize: 100 },
    lengths: [90],
  },
  {
    name: 'TS-13 (D-5) TCPv4 gso 100 with 200 segments of payload: 200 packets',
    opts: { ...T4, payload: 20000, gsoSize: 100 },
    lengths: Array<number>(200).fill(140),
    check: (s) => assert.equal(u32(s[199]!, 24), 1 + 199 * 100),
  },
];

for (const sc of scenarios) {
  test(sc.name, () => {
    const { frame: f } = superFrame(sc.opts);
    const segs = segmentAll(f);
    assert.deepEqual(segs.map((p) => p.length), sc.lengths);
    for (const p of segs) assertValid(p);
    assert.deepEqual(segs, expectedSegments(sc.opts), 'byte-identical to independently built segments');
    sc.check?.(segs);
  });
}

test('TS-7 (RD-6, RD-9) a one-segment GSO frame gets IP lengths and IPv4 checksum rewritten when inconsistent', () => {
  const opts: GsoOpts = { ...T4, payload: 50, gsoSize: 100 };
  const { frame: f } = superFrame(opts);
  f[10 + 2] = 0x03; // bogus IPv4 total length
  f[10 + 10] ^= 0x55; // bogus header checksum
  const [p] = segmentAll(f);
  assertValid(p!);
  assert.deepEqual([p!], expectedSegments(opts));
});

test('TS-7b (RD-6, RD-7) NONE with NEEDS_CSUM and the pseudo sum in the field: checksum completed, rest unchanged', () => {
  for (const base of [
    buildPacket({ version: 4, proto: 'tcp', src: V4.A, dst: V4.B, payload: 77 }),
    buildPacket({ version: 6, proto: 'udp', src: V6.A, dst: V6.B, payload: 300 }),
  ]) {
    const v4 = base[0]! >> 4 === 4;
    const iphLen = v4 ? 20 : 40;
    const proto = v4 ? base[9]! : base[6]!;
    const off = proto === 6 ? 16 : 6;
    const partial = base.slice();
    const pseudo = slowSum(partial, v4 ? 12 : 8, v4 ? 20 : 40, proto + base.length - iphLen);
    partial[iphLen + off] = pseudo >> 8;
    partial[iphLen + off + 1] = pseudo & 0xff;
    const f = frame({ needsCsum: true, gsoType: GSO_NONE, hdrLen: 0, gsoSize: 0, csumStart: iphLen, csumOffset: off }, partial);
    assert.deepEqual(segmentAll(f), [base]);
  }
});

test('TS-8 (RD-6) NONE without flags: copied verbatim, even with a wrong checksum', () => {
  const p = buildPacket({ version: 4, proto: 'udp', src: V4.A, dst: V4.B, payload: 64 });
  p[27] ^= 0xff;
  const f = frame({ needsCsum: false, gsoType: GSO_NONE, hdrLen: 999, gsoSize: 7, csumStart: 5000, csumOffset: 5000 }, p);
  assert.deepEqual(segmentAll(f), [p]);
});

test('TS-9 (HDR-6) gso_type 3, 0x81, 0x84: ERR_GSO_TYPE_UNSUPPORTED, no packets', () => {
  for (const t of [3, 0x81, 0x84]) {
    const { frame: f } = superFrame({ ...T4, payload: 200, gsoSize: 100, gsoType: t });
    rejects(f, 'ERR_GSO_TYPE_UNSUPPORTED');
  }
});

test('TS-10 (RD-5.3) TCPv4 with data-offset nibble 4: ERR_TCP_HDR_LEN', () => {
  const { frame: f } = superFrame({ ...T4, payload: 200, gsoSize: 100 });
  f[10 + 32] = 0x40;
  rejects(f, 'ERR_TCP_HDR_LEN');
});

test('TS-11 (RD-5.6) csum_start + csum_offset + 1 >= length: ERR_CSUM_OFFSET', () => {
  const { frame: f } = superFrame({ ...T4, payload: 200, gsoSize: 100 });
  const len = f.length - 10;
  setLE16(f, 8, len - 1 - 20); // csumStart + off + 1 == len
  rejects(f, 'ERR_CSUM_OFFSET');
  setLE16(f, 8, len - 2 - 20); // the last two bytes: allowed
  assert.equal(segmentAll(f).length, 2);
});

test('TS-12 (RD-5.2) IPv6 packet announced as TCPV4: ERR_IP_VERSION_MISMATCH', () => {
  const { frame: f } = superFrame({ ...T6, payload: 200, gsoSize: 100, gsoType: GSO_TCPV4 });
  rejects(f, 'ERR_IP_VERSION_MISMATCH');
});

test('TS-14 (HDR-2, RD-2) frame shorter than 10 bytes: ERR_VNET_HDR_SHORT', () => {
  for (let n = 0; n < 10; n++) rejects(new Uint8Array(n), 'ERR_VNET_HDR_SHORT');
});

// ----------------------------------------------------------- rule tests

test('RD-4 NONE: checksum position checked only with NEEDS_CSUM; hdr_len not used', () => {
  const p = buildPacket({ version: 4, proto: 'tcp', src: V4.A, dst: V4.B, payload: 10 });
  const h: VirtioNetHeader = { needsCsum: true, gsoType: GSO_NONE, hdrLen: 0, gsoSize: 0, csumStart: 20, csumOffset: p.length - 21 };
  rejects(frame(h, p), 'ERR_CSUM_OFFSET');
  assert.deepEqual(segmentAll(frame({ ...h, needsCsum: false }, p)), [p]);
});

test('RD-6 a bare 10-byte NONE frame yields one empty packet', () => {
  const f = frame({ needsCsum: false, gsoType: GSO_NONE, hdrLen: 0, gsoSize: 0, csumStart: 0, csumOffset: 0 }, new Uint8Array(0));
  const segs = segmentAll(f);
  assert.equal(segs.length, 1);
  assert.equal(segs[0]!.length, 0);
});

test('RD-9 a GSO frame with an empty payload yields no packet and no error', () => {
  const { frame: f } = superFrame({ ...T4, payload: 0, gsoSize: 100 });
  assert.deepEqual(segmentAll(f), []);
  const { frame: u } = superFrame({ ...U6, payload: 0, gsoSize: 100 });
  assert.deepEqual(segmentAll(u), []);
});

test('RD-5 each check in order, with its D-10 code', () => {
  const good = () => superFrame({ ...T4, payload: 200, gsoSize: 100 }).frame;
  // RD-5.1
  rejects(frame({ needsCsum: true, gsoType: GSO_TCPV4, hdrLen: 0, gsoSize: 100, csumStart: 20, csumOffset: 16 }, new Uint8Array(0)), 'ERR_PACKET_EMPTY');
  // RD-5.2: versions and types
  let f = good();
  f[10] = 0x55;
  rejects(f, 'ERR_IP_VERSION_MISMATCH');
  rejects(superFrame({ ...T4, payload: 200, gsoSize: 100, gsoType: GSO_TCPV6 }).frame, 'ERR_IP_VERSION_MISMATCH');
  rejects(superFrame({ ...U6, payload: 200, gsoSize: 100, gsoType: GSO_TCPV4 }).frame, 'ERR_IP_VERSION_MISMATCH');
  rejects(good().subarray(0, 10 + 19), 'ERR_PACKET_TOO_SHORT');
  rejects(superFrame({ ...T6, payload: 200, gsoSize: 100 }).frame.subarray(0, 10 + 39), 'ERR_PACKET_TOO_SHORT');
  // RD-5.2 comes before RD-5.7: a mismatched frame with gso_size 0 names the mismatch.
  f = superFrame({ ...T4, payload: 200, gsoSize: 0, gsoType: GSO_TCPV6 }).frame;
  rejects(f, 'ERR_IP_VERSION_MISMATCH');
  // RD-5.3: the TCP data offset must be inside the packet
  f = good();
  setLE16(f, 6, f.length - 10 - 12); // len == csumStart + 12
  rejects(f, 'ERR_PACKET_TOO_SHORT');
  // RD-5.3: data offset 0..4 words
  for (const nib of [0, 1, 4]) {
    f = good();
    f[10 + 32] = nib << 4;
    rejects(f, 'ERR_TCP_HDR_LEN');
  }
  // RD-5.4: shorter than the recomputed header (UDP: csumStart + 8)
  f = superFrame({ ...U4, payload: 4, gsoSize: 100 }).frame;
  setLE16(f, 6, 26); // hdrLen 34 > 32 bytes; csum field 26+6 also out, but 5.4 comes first
  rejects(f, 'ERR_HDR_LEN');
  // RD-5.4 for TCP: data offset 60 bytes in a 60-byte TCP part (len 80 - but needs 80)
  f = good().subarray(0, 10 + 20 + 40);
  f[10 + 32] = 0xf0;
  rejects(f, 'ERR_HDR_LEN');
  // RD-5.6 before RD-5.7
  f = superFrame({ ...T4, payload: 200, gsoSize: 0 }).frame;
  setLE16(f, 8, 5000);
  rejects(f, 'ERR_CSUM_OFFSET');
  // D-3 / RD-5.7
  rejects(superFrame({ ...T4, payload: 200, gsoSize: 0 }).frame, 'ERR_GSO_SIZE_ZERO');
  rejects(superFrame({ ...U6, payload: 200, gsoSize: 0 }).frame, 'ERR_GSO_SIZE_ZERO');
});

test('HDR-3, RD-5: the kernel hdr_len is not trusted for GSO types; NEEDS_CSUM and DATA_VALID play no part', () => {
  const opts: GsoOpts = { ...T4, payload: 300, gsoSize: 100 };
  const want = expectedSegments(opts);
  for (const hdrLen of [0, 40, 140, 340, 0xffff]) {
    assert.deepEqual(segmentAll(superFrame({ ...opts, hdrLen }).frame), want, `hdr_len ${hdrLen}`);
  }
  const f = superFrame({ ...opts, needsCsum: false }).frame;
  assert.deepEqual(segmentAll(f), want, 'without NEEDS_CSUM');
  f[0] = VNET_F_DATA_VALID;
  assert.deepEqual(segmentAll(f), want, 'DATA_VALID ignored');
  f[0] = VNET_F_NEEDS_CSUM | VNET_F_DATA_VALID;
  assert.deepEqual(segmentAll(f), want);
});

test('HDR-3, RD-8: csum_start is the IP header length (IPv4 options are copied to every segment)', () => {
  const opts: GsoOpts = { ...T4, payload: 250, gsoSize: 100 };
  const plain = buildPacket({ ...opts, payload: 250 });
  // Insert 4 option bytes (NOP NOP NOP EOL) after the IPv4 header: IHL 6.
  const p = new Uint8Array(plain.length + 4);
  p.set(plain.subarray(0, 20));
  p.set([1, 1, 1, 0], 20);
  p.set(plain.subarray(20), 24);
  p[0] = 0x46;
  const f = frame({ needsCsum: true, gsoType: GSO_TCPV4, hdrLen: 44, gsoSize: 100, csumStart: 24, csumOffset: 16 }, p);
  const segs = segmentAll(f);
  assert.deepEqual(segs.map((s) => s.length), [144, 144, 94]);
  for (const s of segs) {
    assert.deepEqual([...s.subarray(20, 24)], [1, 1, 1, 0]);
    assertValid(s);
  }
});

test('RD-9 IPv4 ID and TCP sequence wrap (PIT-11); all other flags reach every segment', () => {
  const opts: GsoOpts = {
    ...T4,
    payload: 300,
    gsoSize: 100,
    ipId: 0xffff,
    seq: 0xffffff9c,
    flags: TCP_ACK | TCP_URG | TCP_ECE | TCP_CWR | TCP_PSH | TCP_FIN,
    tos: 0xb8,
    ttl: 3,
  };
  const segs = segmentAll(superFrame(opts).frame);
  assert.deepEqual(segs.map((p) => u16(p, 4)), [0xffff, 0, 1]);
  assert.deepEqual(segs.map((p) => u32(p, 24)), [0xffffff9c, 0, 100]);
  const keep = TCP_ACK | TCP_URG | TCP_ECE | TCP_CWR;
  assert.deepEqual(segs.map((p) => p[33]), [keep, keep, keep | TCP_PSH | TCP_FIN]);
  for (const p of segs) {
    assert.equal(p[1], 0xb8, 'TOS copied');
    assert.equal(p[8], 3, 'TTL copied');
    assert.equal(u16(p, 6), 0x4000, 'DF copied');
    assertValid(p);
  }
  assert.deepEqual(segs, expectedSegments(opts));
});

test('RD-9 IPv6: only the payload length changes (traffic class and flow label kept); TCP options copied', () => {
  const options = new Uint8Array([1, 1, 8, 10, 0, 0, 0, 7, 0, 0, 0, 9]);
  const opts: GsoOpts = { ...T6, payload: 1000, gsoSize: 300, tos: 0x2e, flowLabel: 0xabcde, options };
  const segs = segmentAll(superFrame(opts).frame);
  assert.deepEqual(segs.map((p) => p.length), [372, 372, 372, 172]);
  for (const p of segs) {
    assert.equal(u32(p, 0), (6 << 28) | (0x2e << 20) | 0xabcde);
    assert.deepEqual(p.subarray(60, 72), options);
    assertValid(p);
  }
  assert.deepEqual(segs, expectedSegments(opts));
});

test('RD-9 UDP: length = segLen + 8 with a short last segment; every segment verifies', () => {
  const opts: GsoOpts = { ...U4, payload: 3001, gsoSize: 1200 };
  const segs = segmentAll(superFrame(opts).frame);
  assert.deepEqual(segs.map((p) => u16(p, 24)), [1208, 1208, 609]);
  for (const p of segs) assertValid(p);
  assert.deepEqual(segs, expectedSegments(opts));
});

test('RD-9 a 64 KiB TCPv4 super-packet at gso 1448, odd tail, matches independently built segments', () => {
  const opts: GsoOpts = { ...T4, payload: 65535 - 40, gsoSize: 1448, seq: 123456789 };
  const segs = segmentAll(superFrame(opts).frame);
  assert.equal(segs.length, Math.ceil((65535 - 40) / 1448));
  assert.deepEqual(segs, expectedSegments(opts));
});

test('RD-8 the zeroed checksum field is what later reads of `in` see (field overlapping the sequence number)', () => {
  // csum_offset 4: the field is the upper half of the sequence number, so
  // firstSeq and the copied headers see it as zero.
  const { frame: f } = superFrame({ ...T4, payload: 200, gsoSize: 100, seq: 0x12345678 });
  setLE16(f, 8, 4);
  const segs = segmentAll(f);
  // The checksum store lands on the seq bytes afterwards, so read seq's low half.
  assert.deepEqual(segs.map((p) => u16(p, 26)), [0x5678, 0x5678 + 100]);
  // Field within the payload: the payload copy carries the zeros.
  const g = superFrame({ ...U4, payload: 200, gsoSize: 100, fill: 0xaa }).frame;
  setLE16(g, 8, 8 + 150); // payload bytes 150..151
  const [a, b] = segmentAll(g);
  assert.equal(a!.length, 128);
  assert.notDeepEqual([g[10 + 28 + 150], g[10 + 28 + 151]], [0, 0], 'the input bytes are not zero');
  assert.deepEqual([b![28 + 50], b![28 + 51]], [0, 0], 'the copy sees the zeroed field');
  // IPv4 header checksum bytes (10..11) are zeroed in `in` before use.
  const h = superFrame({ ...T4, payload: 200, gsoSize: 100 }).frame;
  h[10 + 10] = 0xde;
  h[10 + 11] = 0xad;
  for (const p of segmentAll(h)) assertValid(p);
});

test('RD-9 step order with csumStart < 12 on IPv4: later steps overwrite earlier ones (reference model)', () => {
  // A malformed UDP_L4 frame whose "transport header" starts at byte 4.
  const p = buildPacket({ version: 4, proto: 'udp', src: V4.A, dst: V4.B, payload: 60 });
  for (const start of [0, 2, 4, 8, 11]) {
    for (const gso of [1, 3, 50]) {
      const f = frame({ needsCsum: true, gsoType: GSO_UDP_L4, hdrLen: 0, gsoSize: gso, csumStart: start, csumOffset: 6 }, p);
      const segs = segmentAll(f);
      assert.ok(segs.length > 0);
    }
  }
});

test('D-4 a UDP_L4 segment whose checksum computes to 0x0000 carries 0xFFFF; TCP keeps 0x0000', () => {
  // One-segment frames, payload tuned so the full checksum is exactly 0.
  const u = buildPacket({ version: 6, proto: 'udp', src: V6.A, dst: V6.B, payload: 100 });
  tuneForZeroChecksum(u, 40, 17, 60);
  const fu = frame({ needsCsum: true, gsoType: GSO_UDP_L4, hdrLen: 48, gsoSize: 100, csumStart: 40, csumOffset: 6 }, u);
  const [su] = segmentAll(fu);
  assert.equal(u16(su!, 46), 0xffff);
  assert.ok(transportChecksumValid(su!, 40, 17), '0xFFFF verifies as well');
  const t = buildPacket({ version: 4, proto: 'tcp', src: V4.A, dst: V4.B, payload: 100 });
  tuneForZeroChecksum(t, 20, 6, 60);
  const ft = frame({ needsCsum: true, gsoType: GSO_TCPV4, hdrLen: 40, gsoSize: 100, csumStart: 20, csumOffset: 16 }, t);
  const [st] = segmentAll(ft);
  assert.equal(u16(st!, 36), 0);
});

test('D-4 in the middle of a split (segment 1 of 3, the WebAssembly loop on fused paths): 0x0000 becomes 0xFFFF', () => {
  for (const version of [4, 6] as const) {
    const addr = version === 4 ? V4 : V6;
    const iph = version === 4 ? 20 : 40;
    // Segment 1 alone, tuned to a zero checksum, then placed between two others.
    const mid = buildPacket({ version, proto: 'udp', src: addr.A, dst: addr.B, payload: 100 });
    tuneForZeroChecksum(mid, iph, 17, iph + 8 + 60);
    const payload = new Uint8Array(250);
    payload.fill(0x33, 0, 100);
    payload.set(mid.subarray(iph + 8), 100);
    payload.fill(0x44, 200);
    const p = buildPacket({ version, proto: 'udp', src: addr.A, dst: addr.B, payload });
    const f = frame({ needsCsum: true, gsoType: GSO_UDP_L4, hdrLen: iph + 8, gsoSize: 100, csumStart: iph, csumOffset: 6 }, p);
    const segs = segmentAll(f);
    assert.equal(segs.length, 3);
    assert.equal(u16(segs[1]!, iph + 6), 0xffff, `IPv${version}`);
    for (const s of segs) assert.ok(transportChecksumValid(s, iph, 17));
  }
});

test('RD-7 (not D-4) NONE completion stores a computed 0x0000 unchanged, also for UDP', () => {
  const u = buildPacket({ version: 4, proto: 'udp', src: V4.A, dst: V4.B, payload: 40 });
  tuneForZeroChecksum(u, 20, 17, 30);
  // The field holds the pseudo sum as the kernel leaves it (CK-3 partial).
  const pseudo = slowSum(u, 12, 20, 17 + u.length - 20);
  u[26] = pseudo >> 8;
  u[27] = pseudo & 0xff;
  const f = frame({ needsCsum: true, gsoType: GSO_NONE, hdrLen: 0, gsoSize: 0, csumStart: 20, csumOffset: 6 }, u);
  const [p] = segmentAll(f);
  assert.equal(u16(p!, 26), 0);
});

test('RD-11 not validated on read: IPv4 header checksum, IP lengths, csum_offset 16/6', () => {
  const { frame: f } = superFrame({ ...T4, payload: 200, gsoSize: 100 });
  f[10 + 2] = 0xff;
  f[10 + 3] = 0xff; // total length 65535, frame is 240
  f[10 + 11] ^= 1;
  assert.equal(segmentAll(f).length, 2);
  setLE16(f, 8, 2); // checksum "field" on the destination port
  assert.equal(segmentAll(f).length, 2);
});

test('D-5 / RD-10 an output area one byte short: ERR_OUTPUT_TOO_SMALL and nothing delivered; exact size works', () => {
  const { frame: f } = superFrame({ ...T4, payload: 20000, gsoSize: 100 });
  const need = 200 * 140;
  for (const inArena of [false, true]) {
    const out = inArena ? arena.bytes.subarray(OUT_AT, OUT_AT + need) : new Uint8Array(need);
    const packets: Uint8Array[] = [];
    assert.equal(errorCode(() => segmentInto(f, out.subarray(0, need - 1), packets)), 'ERR_OUTPUT_TOO_SMALL');
    assert.equal(packets.length, 0);
    assert.equal(segmentInto(f, out, packets), need);
    assert.equal(packets.length, 200);
  }
  // A NONE frame too.
  const p = buildPacket({ version: 4, proto: 'udp', src: V4.A, dst: V4.B, payload: 10 });
  const g = frame({ needsCsum: false, gsoType: GSO_NONE, hdrLen: 0, gsoSize: 0, csumStart: 0, csumOffset: 0 }, p);
  assert.equal(errorCode(() => segmentInto(g, new Uint8Array(p.length - 1), [])), 'ERR_OUTPUT_TOO_SMALL');
});

test('D-5 a small MSS gives several hundred segments, all delivered (gso 1 and gso 7)', () => {
  for (const gsoSize of [1, 7]) {
    const opts: GsoOpts = { ...U4, payload: 700, gsoSize };
    const segs = segmentAll(superFrame(opts).frame);
    assert.equal(segs.length, Math.ceil(700 / gsoSize));
    for (const p of segs) assertValid(p);
  }
});

test('D-5, D-10: segment() caps its allocation at SEGMENT_OUTPUT_LIMIT with ERR_OUTPUT_TOO_SMALL', () => {
  // TCP at csum_start 30000, gso 1: (65535 - 30020) segments x 30021 bytes.
  const p = new Uint8Array(65535);
  p[0] = 0x45;
  p[30000 + 12] = 0x50;
  const f = frame({ needsCsum: true, gsoType: GSO_TCPV4, hdrLen: 0, gsoSize: 1, csumStart: 30000, csumOffset: 16 }, p);
  assert.ok(35515 * 30021 > SEGMENT_OUTPUT_LIMIT);
  assert.equal(errorCode(() => segment(f)), 'ERR_OUTPUT_TOO_SMALL');
});

test('RD-3, D-5: segment() packets stay valid: memory handed out is never reused, one exact buffer per call', () => {
  const opts: GsoOpts = { ...T4, payload: 65000, gsoSize: 1448 };
  const { frame: f } = superFrame(opts);
  const first = segment(f);
  const copies = first.map((p) => p.slice());
  const buffers = new Set<ArrayBufferLike>([first[0]!.buffer]);
  // Well past the scratch arena's size in total: any reuse would show.
  for (let i = 0; i < 100; i++) {
    const again = segment(i % 2 ? f : superFrame({ ...opts, seq: i, fill: i }).frame);
    assert.ok(again.every((p) => p.buffer === again[0]!.buffer), 'one buffer per call');
    buffers.add(again[0]!.buffer);
  }
  assert.equal(buffers.size, 101, 'no buffer shared between calls');
  assert.deepEqual(first, copies);
  assert.deepEqual(first, expectedSegments(opts));
  // The buffer holds exactly the segments, contiguous from 0.
  assert.equal(first[0]!.buffer.byteLength, first.reduce((n, p) => n + p.length, 0));
  assert.equal(first[0]!.byteOffset, 0);
  assert.equal(Arena.of(first[0]!), undefined, 'not arena memory');
});

test('D-5 every path past the scratch arena (gso 1: 2.6 MB of segments, the unfused loops) equals the reference', () => {
  // 64 KiB payload at gso_size 1 needs 41 bytes per payload byte: more than
  // the scratch arena holds, so mixed memories take the per-segment paths.
  const opts: GsoOpts = { ...T4, payload: 65000, gsoSize: 1 };
  const { frame: f } = superFrame(opts);
  const segs = segmentAll(f);
  assert.equal(segs.length, 65000);
  assert.equal(segs.reduce((n, p) => n + p.length, 0), 65000 * 41);
});

test('D-10: segmentInto rejects an output area overlapping the frame (ERR_INVALID_ARG)', () => {
  const { frame: f } = superFrame({ ...T4, payload: 200, gsoSize: 100 });
  arena.bytes.set(f, FRAME_AT);
  const inA = arena.bytes.subarray(FRAME_AT, FRAME_AT + f.length);
  assert.equal(errorCode(() => segmentInto(inA, arena.bytes.subarray(FRAME_AT + 100), [])), 'ERR_INVALID_ARG');
  assert.equal(errorCode(() => segmentInto(inA, arena.bytes.subarray(0), [])), 'ERR_INVALID_ARG');
  assert.equal(segmentInto(inA, arena.bytes.subarray(FRAME_AT + f.length), []), 280);
});

test('RD-2..RD-9 random and mutated frames: every path equals the reference model (bytes or error code)', () => {
  let s = 12345;
  const rnd = (n: number): number => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) % n);
  const kinds: GsoOpts[] = [
    { ...T4, payload: 0, gsoSize: 1 },
    { ...T6, payload: 0, gsoSize: 1 },
    { ...U4, payload: 0, gsoSize: 1 },
    { ...U6, payload: 0, gsoSize: 1 },
  ];
  for (let t = 0; t < 600; t++) {
    const k = kinds[rnd(4)]!;
    const opts: GsoOpts = { ...k, payload: rnd(3000), gsoSize: 1 + rnd(1500), seq: rnd(2 ** 31) * 2, ipId: rnd(65536) };
    const { frame: f } = superFrame(opts);
    // Mutations: header fields, packet bytes, truncation.
    const m = rnd(8);
    if (m === 0) f[1] = [0, 1, 4, 5][rnd(4)]!;
    if (m === 1) setLE16(f, 6, rnd(80));
    if (m === 2) setLE16(f, 8, rnd(64));
    if (m === 3) f[10 + rnd(f.length - 10)] = rnd(256);
    if (m === 4) setLE16(f, 4, rnd(4));
    const g = m === 5 ? f.subarray(0, rnd(f.length + 1)) : f;
    if (m === 6) f[0] = rnd(256);
    const ref = referenceSegment(g);
    if ('code' in ref) {
      rejects(g, ref.code);
    } else {
      segmentAll(g);
      if (m === 7 && ref.packets.length > 0) {
        assert.deepEqual(ref.packets, expectedSegments(opts));
        for (const p of ref.packets) assertValid(p);
      }
    }
  }
});

// ---------------------------------------------------------------- Segmenter and segment() lifetimes

test('Segmenter (RD-9, D-5): packets are views on its own memory, valid until the next call, which overwrites them', () => {
  const s = new Segmenter();
  const f1 = superFrame({ ...T4, payload: 300, gsoSize: 100, seq: 1 }).frame;
  const f2 = superFrame({ ...T4, payload: 300, gsoSize: 100, seq: 5001, fill: 9 }).frame;
  const first = s.segment(f1);
  const firstCopy = first.map((p) => p.slice());
  const firstViews = [...first];
  const ref1 = referenceSegment(f1);
  const ref2 = referenceSegment(f2);
  assert.ok(!('code' in ref1) && !('code' in ref2));
  assert.deepEqual(firstCopy, ref1.packets);
  assert.ok(first.every((p) => p.buffer === first[0]!.buffer), 'one output area');
  const second = s.segment(f2);
  assert.equal(second, first, 'the returned array is reused');
  assert.deepEqual(second.map((p) => p.slice()), ref2.packets);
  // Same layout: the same view objects, now holding the second frame's segments.
  for (let i = 0; i < 3; i++) assert.equal(second[i], firstViews[i], `view ${i} reused`);
  assert.notDeepEqual(firstViews.map((p) => p.slice()), firstCopy, 'the earlier views were overwritten (documented)');
  // A different layout makes new views of the right lengths.
  const f3 = superFrame({ ...T4, payload: 250, gsoSize: 120 }).frame;
  const third = s.segment(f3);
  assert.deepEqual(third.map((p) => p.length), [160, 160, 50]);
  assert.notEqual(third[1], firstViews[1]);
});

test('Segmenter D-5: a frame whose segments exceed its area grows it; later frames still equal the reference', () => {
  const s = new Segmenter();
  const small = superFrame({ ...U4, payload: 2400, gsoSize: 1200 }).frame;
  const before = s.segment(small)[0]!;
  const huge = superFrame({ ...T4, payload: 40000, gsoSize: 1 }).frame; // 40000 x 41 bytes > 1 MiB
  const got = s.segment(huge);
  assert.equal(got.length, 40000);
  assert.notEqual(got[0]!.buffer, before.buffer, 'a bigger area');
  const ref = referenceSegment(small);
  assert.ok(!('code' in ref));
  assert.deepEqual(s.segment(small).map((p) => p.slice()), ref.packets);
});

test('Segmenter: bad frames throw the D-10 code and leave the last result untouched', () => {
  const s = new Segmenter();
  const good = superFrame({ ...T6, payload: 200, gsoSize: 100 }).frame;
  const last = s.segment(good).map((p) => p.slice());
  const bad = good.slice();
  bad[1] = 0x81; // HDR-6
  assert.equal(errorCode(() => s.segment(bad)), 'ERR_GSO_TYPE_UNSUPPORTED');
  assert.equal(errorCode(() => s.segment(good.subarray(0, 5))), 'ERR_VNET_HDR_SHORT');
  assert.deepEqual(s.segment(good).map((p) => p.slice()), last);
});

test('segment(): packets stay valid and unaliased while held, across later segment() and Segmenter calls', () => {
  const s = new Segmenter();
  const frames = [0, 1, 2, 3].map((k) => superFrame({ ...(k % 2 ? U6 : T4), payload: 3000 + k, gsoSize: 1000, seq: 1 + k * 7919, fill: k }).frame);
  const held = frames.map((f) => segment(f));
  const copies = held.map((ps) => ps.map((p) => p.slice()));
  for (let r = 0; r < 20; r++) for (const f of frames) {
    segment(f);
    s.segment(f);
  }
  assert.deepEqual(held.map((ps) => ps.map((p) => p.slice())), copies, 'held packets unchanged');
  const buffers = new Set(held.flat().map((p) => p.buffer));
  assert.equal(buffers.size, held.length, 'one buffer per call, shared with nothing else');
  for (const ps of held) assert.equal(ps[0]!.buffer.byteLength, ps.reduce((n, p) => n + p.length, 0), 'holding a packet keeps only its own call alive');
  frames.forEach((f, i) => {
    const ref = referenceSegment(f);
    assert.ok(!('code' in ref));
    assert.deepEqual(copies[i], ref.packets);
  });
});
