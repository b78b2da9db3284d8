/**
 * GRO coalescing (spec sec. 5, 6): one test per rule, and the named write
 * scenarios TS-15..TS-32, TS-37, TS-38 as a table. Inputs are built fresh
 * for every run, since coalescing rewrites head packets in place (PIT-2).
 *
 * TS-33..TS-36 are about the offset convention, writev error handling and
 * devices without virtio headers: they belong to the device layer
 * (test/device), not to the pure core.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Coalescer, GRO_MAX_VECTOR_ENTRIES, coalesce, type WriteList } from '../../src/core/gro.js';
import { checksumSum, pseudoHeaderSumFor, transportChecksumValid } from '../../src/core/checksum.js';
import { decodeVirtioNetHeader, GSO_TCPV4, GSO_TCPV6, GSO_UDP_L4, GSO_NONE } from '../../src/core/virtio.js';
import {
  TCP_ACK,
  TCP_CWR,
  TCP_ECE,
  TCP_FIN,
  TCP_PSH,
  TCP_RST,
  TCP_SYN,
  TCP_URG,
  V4,
  V6,
  buildPacket,
  clonePackets,
  concat,
  fixTransportChecksum,
  type PacketOptions,
} from './packets.js';

type Host = 'A' | 'B' | 'C';
type Extra = Partial<PacketOptions>;

function t4(src: Host, dst: Host, payload: number, seq: number, extra: Extra = {}): Uint8Array {
  return buildPacket({ version: 4, proto: 'tcp', src: V4[src], dst: V4[dst], payload, seq, ...extra });
}
function t6(src: Host, dst: Host, payload: number, seq: number, extra: Extra = {}): Uint8Array {
  return buildPacket({ version: 6, proto: 'tcp', src: V6[src], dst: V6[dst], payload, seq, ...extra });
}
function u4(src: Host, dst: Host, payload: number, extra: Extra = {}): Uint8Array {
  return buildPacket({ version: 4, proto: 'udp', src: V4[src], dst: V4[dst], payload, ...extra });
}
function u6(src: Host, dst: Host, payload: number, extra: Extra = {}): Uint8Array {
  return buildPacket({ version: 6, proto: 'udp', src: V6[src], dst: V6[dst], payload, ...extra });
}
/** Flips a payload byte: the transport checksum no longer verifies. */
function corrupt(p: Uint8Array): Uint8Array {
  p[p.length - 1] = p[p.length - 1]! ^ 0x5a;
  return p;
}
const shapes = (writes: readonly (readonly Uint8Array[])[]): number[][] => writes.map((v) => v.map((b) => b.length));
const hdr = (v: readonly Uint8Array[]) => decodeVirtioNetHeader(v[0]!);
const isZero = (b: Uint8Array) => b.length === 10 && b.every((x) => x === 0);
const u16 = (p: Uint8Array, at: number) => (p[at]! << 8) | p[at + 1]!;
const u32 = (p: Uint8Array, at: number) => ((p[at]! << 24) | (p[at + 1]! << 16) | (p[at + 2]! << 8) | p[at + 3]!) >>> 0;

/**
 * Every write is well formed: zero header for single packets; for coalesced
 * ones, IP lengths, the IPv4 header checksum and the partial transport
 * checksum are right, which we verify by completing it (CK-3).
 */
function assertWritesValid(writes: readonly (readonly Uint8Array[])[]): void {
  for (const v of writes) {
    if (v.length === 2) {
      assert.ok(isZero(v[0]!), 'single packets carry an all-zero header');
      continue;
    }
    const h = hdr(v);
    const f = concat(v.slice(1));
    const v4 = f[0]! >> 4 === 4;
    const iph = v4 ? 20 : 40;
    assert.equal(h.csumStart, iph);
    if (v4) {
      assert.equal(u16(f, 2), f.length, 'IPv4 total length');
      assert.equal(~checksumSum(f, 0, 20, 0) & 0xffff, 0, 'IPv4 header checksum');
    } else assert.equal(u16(f, 4), f.length - 40, 'IPv6 payload length');
    const proto = h.gsoType === GSO_UDP_L4 ? 17 : 6;
    const at = iph + h.csumOffset;
    assert.equal(u16(f, at), pseudoHeaderSumFor(f, proto, f.length - iph), 'partial checksum = pseudo-header sum');
    const c = ~checksumSum(f, iph, f.length, 0) & 0xffff;
    f[at] = c >> 8;
    f[at + 1] = c & 0xff;
    assert.ok(transportChecksumValid(f, iph, proto), 'completed checksum verifies');
  }
}

interface Scenario {
  name: string;
  packets: () => Uint8Array[];
  udp?: boolean;
  shapes: number[][];
  check?: (writes: Uint8Array[][], input: Uint8Array[]) => void;
}

const seqRun = (n: number, payload: number, f: (seq: number) => Uint8Array = (s) => t4('A', 'B', payload, s)) =>
  Array.from({ length: n }, (_, i) => f(1 + i * payload));

/** The mixed batch of TS-15, reused by TS-16 with UDP GRO off. */
const ts15Batch = (): Uint8Array[] => [
  t4('A', 'B', 100, 1),
  u4('A', 'B', 100),
  u4('A', 'C', 100),
  t4('A', 'B', 100, 101),
  t4('A', 'C', 100, 201),
  t6('A', 'B', 100, 1),
  t6('A', 'B', 100, 101),
  t6('A', 'C', 100, 201),
  u4('A', 'B', 100),
  u6('A', 'B', 100),
  u6('A', 'B', 100),
];

const scenarios: Scenario[] = [
  {
    name: 'TS-15 mixed batch: 7 vectors in creation order (GRO-O1)',
    udp: true,
    packets: ts15Batch,
    shapes: [[10, 140, 100], [10, 128, 100], [10, 128], [10, 140], [10, 160, 100], [10, 160], [10, 148, 100]],
  },
  {
    name: 'TS-16 same batch with UDP GRO disabled (GRO-C2)',
    udp: false,
    packets: ts15Batch,
    shapes: [[10, 140, 100], [10, 128], [10, 128], [10, 140], [10, 160, 100], [10, 160], [10, 128], [10, 148], [10, 148]],
    check: (w) => {
      for (const i of [1, 2, 6, 7, 8]) assert.ok(isZero(w[i]![0]!));
    },
  },
  {
    name: 'TS-17 PSH ends an item; the first head carries PSH (GRO-T5.5, GRO-T6)',
    packets: () => [
      t4('A', 'B', 100, 1),
      t4('A', 'B', 100, 101, { flags: TCP_ACK | TCP_PSH }),
      t4('A', 'B', 100, 201),
      t4('A', 'B', 100, 301),
      t6('A', 'B', 100, 1),
      t6('A', 'B', 100, 101, { flags: TCP_ACK | TCP_PSH }),
      t6('A', 'B', 100, 201),
      t6('A', 'B', 100, 301),
    ],
    shapes: [[10, 140, 100], [10, 140, 100], [10, 160, 100], [10, 160, 100]],
    check: (w) => {
      assert.equal(w[0]![1]![20 + 13], TCP_ACK | TCP_PSH);
      assert.equal(w[1]![1]![20 + 13], TCP_ACK);
      assert.equal(w[2]![1]![40 + 13], TCP_ACK | TCP_PSH);
      assert.equal(w[3]![1]![40 + 13], TCP_ACK);
    },
  },
  {
    name: 'TS-18 bad head checksums: lone packets with zero headers (GRO-T4, GRO-U3, GRO-A6)',
    udp: true,
    packets: () => [
      corrupt(t4('A', 'B', 100, 1)),
      t4('A', 'B', 100, 101),
      t4('A', 'B', 100, 201),
      corrupt(u4('A', 'B', 100)),
      u4('A', 'B', 100),
      u4('A', 'B', 100),
    ],
    shapes: [[10, 140], [10, 140, 100], [10, 128], [10, 128, 100]],
    check: (w, input) => {
      assert.ok(isZero(w[0]![0]!));
      assert.ok(isZero(w[2]![0]!));
      assert.equal(w[0]![1], input[0]);
      assert.equal(w[2]![1], input[3]);
    },
  },
  {
    name: 'TS-19 out of order 101, 1, 201: prepend then append (GRO-T5.6, GRO-T6)',
    packets: () => [t4('A', 'B', 100, 101), t4('A', 'B', 100, 1), t4('A', 'B', 100, 201)],
    shapes: [[10, 140, 100, 100]],
    check: (w, input) => {
      const head = w[0]![1]!;
      assert.equal(head, input[1]);
      assert.equal(u32(head, 24), 1);
      assert.equal(u16(head, 2), 340);
      assert.equal(hdr(w[0]!).gsoSize, 100);
      // Fragment order follows the sequence: 101 then 201.
      assert.deepEqual(w[0]![2], input[0]!.subarray(40));
      assert.deepEqual(w[0]![3], input[2]!.subarray(40));
    },
  },
  ...(
    [
      ['TTL', { ttl: 63 }],
      ['TOS', { tos: 4 }],
      ['DF', { fragField: 0 }],
    ] as const
  ).flatMap(([what, extra]): Scenario[] => [
    {
      name: `TS-20 IPv4 ${what} differs: TCP and UDP singles (GRO-IP1, GRO-T5.3, GRO-U2)`,
      udp: true,
      packets: () => [t4('A', 'B', 100, 1), t4('A', 'B', 100, 101, extra), u4('A', 'B', 100), u4('A', 'B', 100, extra)],
      shapes: [[10, 140], [10, 140], [10, 128], [10, 128]],
    },
  ]),
  ...(
    [
      ['hop limit', { ttl: 63 }],
      ['traffic class (upper nibble)', { tos: 0x10 }],
      ['traffic class (lower nibble)', { tos: 0x01 }],
    ] as const
  ).flatMap(([what, extra]): Scenario[] => [
    {
      name: `TS-20 IPv6 ${what} differs: TCP and UDP singles (GRO-IP1, GRO-T5.3, GRO-U2)`,
      udp: true,
      packets: () => [t6('A', 'B', 100, 1), t6('A', 'B', 100, 101, extra), u6('A', 'B', 100), u6('A', 'B', 100, extra)],
      shapes: [[10, 160], [10, 160], [10, 148], [10, 148]],
    },
  ]),
  {
    name: 'TS-20 IPv4 MF set: no-op (GRO-T1, GRO-U1)',
    udp: true,
    packets: () => [t4('A', 'B', 100, 1), t4('A', 'B', 100, 101, { fragField: 0x2000 }), t4('A', 'B', 100, 101)],
    shapes: [[10, 140, 100], [10, 140]],
    check: (w, input) => assert.equal(w[1]![1], input[1]),
  },
  {
    name: 'TS-21 two in-order TCPv4 1448: header and head rewrite (GRO-A2)',
    packets: () => [t4('A', 'B', 1448, 1), t4('A', 'B', 1448, 1449)],
    shapes: [[10, 1488, 1448]],
    check: (w) => {
      assert.deepEqual(hdr(w[0]!), {
        needsCsum: true,
        gsoType: GSO_TCPV4,
        hdrLen: 40,
        gsoSize: 1448,
        csumStart: 20,
        csumOffset: 16,
      });
      const head = w[0]![1]!;
      assert.equal(u16(head, 2), 2936);
      assert.equal(u16(head, 36), pseudoHeaderSumFor(head, 6, 2916));
      assert.equal(~checksumSum(head, 0, 20, 0) & 0xffff, 0, 'IPv4 header checksum recomputed (CK-5)');
    },
  },
  {
    name: 'TS-22 two UDPv6 1000: header and head rewrite (GRO-A3)',
    udp: true,
    packets: () => [u6('A', 'B', 1000), u6('A', 'B', 1000)],
    shapes: [[10, 1048, 1000]],
    check: (w) => {
      assert.deepEqual(hdr(w[0]!), {
        needsCsum: true,
        gsoType: GSO_UDP_L4,
        hdrLen: 48,
        gsoSize: 1000,
        csumStart: 40,
        csumOffset: 6,
      });
      const head = w[0]![1]!;
      assert.equal(u16(head, 4), 2008, 'IPv6 payload length');
      assert.equal(u16(head, 44), 2008, 'UDP length');
      assert.equal(u16(head, 46), pseudoHeaderSumFor(head, 17, 2008));
    },
  },
  {
    name: 'TS-23 payloads 100, 50, 100: the short tail closes the item (GRO-T5.5)',
    packets: () => [t4('A', 'B', 100, 1), t4('A', 'B', 50, 101), t4('A', 'B', 100, 151)],
    shapes: [[10, 140, 50], [10, 140]],
  },
  {
    name: 'TS-24 payload 50 then 100: no larger segment after a smaller one (GRO-T5.5)',
    packets: () => [t4('A', 'B', 50, 1), t4('A', 'B', 100, 51)],
    shapes: [[10, 90], [10, 140]],
  },
  {
    name: 'TS-25 ack 1 vs ack 2: separate flows (GRO-T2)',
    packets: () => [t4('A', 'B', 100, 1, { ack: 1 }), t4('A', 'B', 100, 101, { ack: 2 }), t4('A', 'B', 100, 201, { ack: 1 })],
    shapes: [[10, 140], [10, 140], [10, 140]],
  },
  {
    name: 'TS-26 SYN, FIN|ACK, RST, URG|ACK, ECE|ACK, bare PSH: no-ops in arrival order (GRO-T1, GRO-C3)',
    packets: () =>
      [TCP_SYN, TCP_FIN | TCP_ACK, TCP_RST, TCP_URG | TCP_ACK, TCP_ECE | TCP_ACK, TCP_PSH, TCP_CWR | TCP_ACK].map((flags, i) =>
        t4('A', 'B', 100, 1 + i * 100, { flags }),
      ),
    shapes: Array.from({ length: 7 }, () => [10, 140]),
    check: (w, input) => {
      w.forEach((v, i) => {
        assert.ok(isZero(v[0]!));
        assert.equal(v[1], input[i]);
      });
    },
  },
  {
    name: 'TS-27 identical 12-byte options merge with hdr_len 52 (GRO-T5.2)',
    packets: () => {
      const opts = new Uint8Array([1, 1, 8, 10, 0, 0, 0, 7, 0, 0, 0, 9]);
      return [t4('A', 'B', 100, 1, { options: opts }), t4('A', 'B', 100, 101, { options: opts })];
    },
    shapes: [[10, 152, 100]],
    check: (w) => {
      assert.equal(hdr(w[0]!).hdrLen, 52);
    },
  },
  {
    name: 'TS-27 a differing timestamp option prevents the merge (GRO-T5.2)',
    packets: () => [
      t4('A', 'B', 100, 1, { options: new Uint8Array([1, 1, 8, 10, 0, 0, 0, 7, 0, 0, 0, 9]) }),
      t4('A', 'B', 100, 101, { options: new Uint8Array([1, 1, 8, 10, 0, 0, 0, 8, 0, 0, 0, 9]) }),
    ],
    shapes: [[10, 152], [10, 152]],
  },
  {
    name: 'GRO-T5.2 differing TCP header lengths never merge',
    packets: () => [t4('A', 'B', 100, 1), t4('A', 'B', 100, 101, { options: new Uint8Array([1, 1, 1, 1]) })],
    shapes: [[10, 140], [10, 144]],
  },
  {
    name: 'TS-28 IPv4 IHL 6 and IPv6 next header 0 are not candidates (GRO-C2)',
    udp: true,
    packets: () => {
      const withOpt = (payload: number, seq: number) => {
        // Rebuild a TCPv4 packet with a 4-byte IP option (IHL 6).
        const p = t4('A', 'B', payload, seq);
        const q = new Uint8Array(p.length + 4);
        q.set(p.subarray(0, 20));
        q.set(p.subarray(20), 24);
        q[0] = 0x46;
        q[2] = q.length >> 8;
        q[3] = q.length & 0xff;
        return q;
      };
      const hbh = (p: Uint8Array) => {
        p[6] = 0;
        return p;
      };
      return [withOpt(100, 1), withOpt(100, 101), hbh(t6('A', 'B', 100, 1)), hbh(t6('A', 'B', 100, 101)), hbh(u6('A', 'B', 100)), hbh(u6('A', 'B', 100))];
    },
    shapes: [[10, 144], [10, 144], [10, 160], [10, 160], [10, 148], [10, 148]],
  },
  {
    name: 'TS-29 UDP payloads 100, 100, 50, 100 (GRO-U2)',
    udp: true,
    packets: () => [u4('A', 'B', 100), u4('A', 'B', 100), u4('A', 'B', 50), u4('A', 'B', 100)],
    shapes: [[10, 128, 100, 50], [10, 128]],
    check: (w) => {
      const h = hdr(w[0]!);
      assert.equal(h.gsoSize, 100);
      assert.equal(u16(w[0]![1]!, 24), 258, 'UDP length = 8 + 250');
    },
  },
  {
    name: 'TS-30 UDP 50 then 100, then 100: the second is a new item that absorbs the third (GRO-U4)',
    udp: true,
    packets: () => [u4('A', 'B', 50), u4('A', 'B', 100), u4('A', 'B', 100)],
    shapes: [[10, 78], [10, 128, 100]],
  },
  {
    name: 'TS-31 46 × 1448: the 46th would exceed 65535 (GRO-L1, GRO-L4)',
    packets: () => seqRun(46, 1448),
    shapes: [[10, 1488, ...Array<number>(44).fill(1448)], [10, 1488]],
    check: (w) => {
      assert.equal(u16(w[0]![1]!, 2), 65200);
    },
  },
  {
    name: 'TS-32 1100 × payload 10: 1024 entries, then a new item (GRO-L2, GRO-T5.1)',
    packets: () => seqRun(1100, 10),
    shapes: [
      [10, 50, ...Array<number>(1022).fill(10)],
      [10, 50, ...Array<number>(76).fill(10)],
    ],
    check: (w) => assert.equal(w[0]!.length, GRO_MAX_VECTOR_ENTRIES),
  },
  {
    name: 'GRO-U2 / GRO-L2: 1100 UDP datagrams of 10 bytes: 1024 entries, then a new item',
    udp: true,
    packets: () => Array.from({ length: 1100 }, () => u4('A', 'B', 10)),
    shapes: [
      [10, 38, ...Array<number>(1022).fill(10)],
      [10, 38, ...Array<number>(76).fill(10)],
    ],
  },
  {
    name: 'TS-38 UDP GRO off (USO rejected): UDP candidates are no-ops, TCP still coalesces (GRO-C2)',
    udp: false,
    packets: () => [u4('A', 'B', 100), u4('A', 'B', 100), t4('A', 'B', 100, 1), t4('A', 'B', 100, 101), u6('A', 'B', 100), u6('A', 'B', 100)],
    shapes: [[10, 128], [10, 128], [10, 140, 100], [10, 148], [10, 148]],
  },
];

for (const s of scenarios) {
  test(s.name, () => {
    // Twice: through coalesce() and through a Coalescer, each on fresh inputs (PIT-2).
    for (const via of ['coalesce', 'Coalescer'] as const) {
      const input = s.packets();
      const pristine = clonePackets(input);
      const writes =
        via === 'coalesce' ? coalesce(input, { udp: s.udp ?? false }) : new Coalescer({ udp: s.udp ?? false }).coalesce(input).writes;
      assert.deepEqual(shapes(writes), s.shapes, via);
      assertWritesValid(writes);
      assertEachPacketOnce(writes, pristine);
      s.check?.(writes, input);
    }
  });
}

/** Every input packet's payload appears exactly once, in some write (GRO-L5 too). */
function assertEachPacketOnce(writes: readonly (readonly Uint8Array[])[], pristine: readonly Uint8Array[]): void {
  assert.ok(writes.length <= pristine.length, 'GRO-L5');
  const total = writes.reduce((n, v) => n + v.length - 1, 0);
  assert.equal(total, pristine.length, 'one entry per input packet');
}

// TS-33 has no offset to get wrong here (D-9: the API takes plain packets; an
// empty packet is a non-candidate, see the GRO-C1 / D-9 test below). TS-34..TS-36
// (writev errors, devices without virtio headers) are tested in test/device/tun.test.ts.

// ---- Per-rule tests ----

test('TS-37 / D-1: a header reused after a coalesced batch is all zero for a bad-head item', () => {
  const c = new Coalescer();
  const first = c.coalesce([t4('A', 'B', 100, 1), t4('A', 'B', 100, 101)]);
  const reused = first.writes[0]![0]!;
  assert.equal(reused[0], 1, 'batch 1 leaves a coalesced header in slot 0');
  const second = c.coalesce([corrupt(t4('A', 'B', 100, 1)), t4('A', 'B', 100, 101)]);
  assert.deepEqual(shapes(second.writes), [[10, 140], [10, 140]]);
  assert.equal(second.writes[0]![0], reused, 'the header buffer is reused (SG-1)');
  assert.ok(isZero(second.writes[0]![0]!), 'D-1: all zero');
  assert.ok(isZero(second.writes[1]![0]!));
});

test('D-1: every header not set by GRO-A2/A3 is zero across many reused batches', () => {
  const c = new Coalescer({ udp: true });
  for (let round = 0; round < 4; round++) {
    const batch =
      round % 2 === 0
        ? [t4('A', 'B', 100, 1), t4('A', 'B', 100, 101), u4('A', 'B', 100), u4('A', 'B', 100)]
        : [u4('A', 'B', 100), t4('A', 'C', 100, 1), corrupt(t6('A', 'B', 100, 1)), t6('A', 'B', 100, 101)];
    const { writes, packetCounts } = c.coalesce(batch);
    writes.forEach((v, i) => {
      if (packetCounts[i] === 1) assert.ok(isZero(v[0]!), `round ${round} write ${i}`);
      else assert.equal(v[0]![0], 1);
    });
  }
});

test('WR-2: coalescing never spans two calls; tables start empty', () => {
  const c = new Coalescer();
  assert.deepEqual(shapes(c.coalesce([t4('A', 'B', 100, 1)]).writes), [[10, 140]]);
  assert.deepEqual(shapes(c.coalesce([t4('A', 'B', 100, 101)]).writes), [[10, 140]]);
  assert.deepEqual(shapes(c.coalesce([]).writes), []);
  assert.deepEqual(shapes(coalesce([t4('A', 'B', 100, 1)])), [[10, 140]]);
  assert.deepEqual(shapes(coalesce([t4('A', 'B', 100, 101)])), [[10, 140]]);
});

test('GRO-C1 / D-9: empty and short packets are non-candidates, passed through with a zero header', () => {
  const empty = new Uint8Array(0);
  const short = t4('A', 'B', 100, 1).slice(0, 27);
  const input = [t4('A', 'B', 100, 1), empty, short, t4('A', 'B', 100, 101)];
  const w = coalesce(input);
  assert.deepEqual(shapes(w), [[10, 140, 100], [10, 0], [10, 27]]);
  assert.equal(w[1]![1], empty);
  assert.equal(w[2]![1], short);
  assert.ok(isZero(w[1]![0]!) && isZero(w[2]![0]!));
});

test('GRO-C2: other IP versions, other protocols and a disabled TCP switch are not candidates', () => {
  const v5 = t4('A', 'B', 100, 1);
  v5[0] = 0x55;
  const icmp = t4('A', 'B', 100, 1);
  icmp[9] = 1;
  const icmp2 = t4('A', 'B', 100, 101);
  icmp2[9] = 1;
  assert.deepEqual(shapes(coalesce([v5, v5.slice(), icmp, icmp2])), [[10, 140], [10, 140], [10, 140], [10, 140]]);
  const c = new Coalescer({ tcp: false, udp: true });
  assert.deepEqual(shapes(c.coalesce([t4('A', 'B', 100, 1), t4('A', 'B', 100, 101), u4('A', 'B', 10), u4('A', 'B', 10)]).writes), [
    [10, 140],
    [10, 140],
    [10, 38, 10],
  ]);
  // The switches are read at each call (DEV-6).
  c.tcp = true;
  c.udp = false;
  assert.deepEqual(shapes(c.coalesce([t4('A', 'B', 100, 1), t4('A', 'B', 100, 101), u4('A', 'B', 10), u4('A', 'B', 10)]).writes), [
    [10, 140, 100],
    [10, 38],
    [10, 38],
  ]);
});

test('GRO-C2: IPv6 TCP shorter than 60 bytes and IPv6 UDP shorter than 48 are not candidates', () => {
  // 59-byte "TCPv6": a 20-byte TCP header needs 60; 47-byte UDPv6 needs 48.
  const tcp = t6('A', 'B', 1, 1).slice(0, 59);
  const udp = u6('A', 'B', 1).slice(0, 47);
  const w = coalesce([tcp, tcp.slice(), udp, udp.slice()], { udp: true });
  assert.deepEqual(shapes(w), [[10, 59], [10, 59], [10, 47], [10, 47]]);
});

test('GRO-C3: no-ops keep their arrival position between coalesced writes', () => {
  const w = coalesce([t4('A', 'B', 100, 1), t4('A', 'B', 0, 101), t4('A', 'B', 100, 101), t4('A', 'B', 100, 1, { flags: TCP_SYN })]);
  assert.deepEqual(shapes(w), [[10, 140, 100], [10, 40], [10, 140]]);
});

test('GRO-T1: each TCP disqualifier makes a no-op', () => {
  const cases: [string, () => Uint8Array][] = [
    ['IPv4 total length ≠ length', () => {
      const p = t4('A', 'B', 100, 101);
      p[3] = p[3]! + 1;
      return p;
    }],
    ['IPv6 payload length ≠ length − 40', () => {
      const p = t6('A', 'B', 100, 101);
      p[5] = p[5]! - 1;
      return p;
    }],
    ['data offset < 5', () => {
      const p = t4('A', 'B', 100, 101);
      p[32] = 0x40;
      fixTransportChecksum(p);
      return p;
    }],
    ['length < iphLen + thLen', () => {
      const p = t4('A', 'B', 4, 101);
      p[32] = 0xf0; // 60-byte header in a 44-byte packet
      return p;
    }],
    ['fragment offset ≠ 0', () => t4('A', 'B', 100, 101, { fragField: 0x4001 })],
    ['fragment offset high bits', () => t4('A', 'B', 100, 101, { fragField: 0x0100 })],
    ['MF', () => t4('A', 'B', 100, 101, { fragField: 0x2000 })],
    ['payload 0 (pure ACK)', () => t4('A', 'B', 0, 101)],
  ];
  for (const [what, make] of cases) {
    const second = make();
    const first = second[0]! >> 4 === 6 ? t6('A', 'B', 100, 1) : t4('A', 'B', 100, 1);
    const w = coalesce([first, second]);
    assert.equal(w.length, 2, what);
    assert.equal(w[1]![1], second, what);
    assert.ok(isZero(w[1]![0]!), what);
  }
});

test('GRO-T1: a packet longer than 65535 bytes is a no-op', () => {
  const big = new Uint8Array(70000);
  big.set(t4('A', 'B', 100, 101).subarray(0, 40));
  big[2] = 0xff;
  big[3] = 0xff;
  const w = coalesce([t4('A', 'B', 100, 1), big]);
  assert.deepEqual(shapes(w), [[10, 140], [10, 70000]]);
});

test('GRO-T2/PIT-6: window and IPv4 ID differences are ignored (the head wins)', () => {
  const input = [t4('A', 'B', 100, 1, { window: 1000, ipId: 7 }), t4('A', 'B', 100, 101, { window: 2000, ipId: 8 })];
  const w = coalesce(input);
  assert.deepEqual(shapes(w), [[10, 140, 100]]);
  assert.equal(u16(w[0]![1]!, 34), 1000);
  assert.equal(u16(w[0]![1]!, 4), 7);
});

test('GRO-IP1: the IPv6 flow label is ignored', () => {
  const w = coalesce([t6('A', 'B', 100, 1, { flowLabel: 1 }), t6('A', 'B', 100, 101, { flowLabel: 2 })]);
  assert.deepEqual(shapes(w), [[10, 160, 100]]);
});

test('GRO-T3 / GRO-O1: a flow\'s write sits at its first packet even after a prepend changes its head', () => {
  const input = [t4('A', 'C', 100, 1), t4('A', 'B', 100, 101), t4('A', 'C', 100, 101), t4('A', 'B', 100, 1)];
  const w = coalesce(input);
  assert.deepEqual(shapes(w), [[10, 140, 100], [10, 140, 100]]);
  assert.equal(w[1]![1], input[3], 'the prepended packet is the head of the second write');
});

test('GRO-T4: a bad head is dropped from the table and older items are still tried', () => {
  // 101 (item 1), 301 corrupt (item 2), 201: prepend onto item 2 fails on its
  // head, so 201 appends to item 1. 401 then cannot reach item 2 any more:
  // only one checksum failure is ever counted.
  const c = new Coalescer();
  const input = [t4('A', 'B', 100, 101), corrupt(t4('A', 'B', 100, 301)), t4('A', 'B', 100, 201), t4('A', 'B', 100, 401)];
  const { writes } = c.coalesce(input);
  assert.deepEqual(shapes(writes), [[10, 140, 100], [10, 140], [10, 140]]);
  assert.ok(isZero(writes[1]![0]!), 'GRO-A6');
  assert.equal(c.stats.checksumFailures, 1);
});

test('GRO-T4: a packet with a bad checksum is a no-op and never joins the table', () => {
  const c = new Coalescer();
  const input = [t4('A', 'B', 100, 1), corrupt(t4('A', 'B', 100, 101)), t4('A', 'B', 100, 201), t4('A', 'B', 100, 101)];
  const { writes } = c.coalesce(input);
  // 201 would try to append to the bad one if it were an item (a second
  // failure); instead it starts item 2, and the good retransmission of 101 is
  // prepended to item 2, the newest that accepts it.
  assert.deepEqual(shapes(writes), [[10, 140], [10, 140], [10, 140, 100]]);
  assert.equal(writes[2]![1], input[3]);
  assert.equal(writes[1]![1], input[1]);
  assert.equal(c.stats.checksumFailures, 1);
});

test('GRO-T4: items are scanned newest to oldest, so a later packet may join an older item (PIT-4)', () => {
  const input = [t4('A', 'B', 100, 1), t4('A', 'B', 100, 1001), t4('A', 'B', 100, 101), t4('A', 'B', 100, 1101)];
  const w = coalesce(input);
  assert.deepEqual(shapes(w), [[10, 140, 100], [10, 140, 100]]);
  assert.equal(w[0]![2]!.buffer, input[2]!.buffer);
});

test('GRO-T5.5: no append after PSH, after a short segment, or of a larger segment', () => {
  assert.deepEqual(shapes(coalesce([t4('A', 'B', 100, 1, { flags: TCP_ACK | TCP_PSH }), t4('A', 'B', 100, 101)])), [[10, 140], [10, 140]]);
  assert.deepEqual(shapes(coalesce([t4('A', 'B', 100, 1), t4('A', 'B', 60, 101), t4('A', 'B', 60, 161)])), [[10, 140, 60], [10, 100]]);
  assert.deepEqual(shapes(coalesce([t4('A', 'B', 100, 1), t4('A', 'B', 101, 101)])), [[10, 140], [10, 141]]);
});

test('GRO-T5.5 / GRO-T6: appending a PSH segment sets PSH on the head and ends the item', () => {
  const input = [t4('A', 'B', 100, 1), t4('A', 'B', 100, 101, { flags: TCP_ACK | TCP_PSH }), t4('A', 'B', 100, 201)];
  const w = coalesce(input);
  assert.deepEqual(shapes(w), [[10, 140, 100], [10, 140]]);
  assert.equal(w[0]![1]![33], TCP_ACK | TCP_PSH);
});

test('GRO-T5.5: sequence numbers wrap modulo 2^32 (PIT-11)', () => {
  const w = coalesce([t4('A', 'B', 100, 0xffffffce), t4('A', 'B', 100, 50), t4('A', 'B', 100, 150)]);
  assert.deepEqual(shapes(w), [[10, 140, 100, 100]]);
  const v = coalesce([t4('A', 'B', 100, 50), t4('A', 'B', 100, 0xffffffce)]);
  assert.deepEqual(shapes(v), [[10, 140, 100]], 'prepend across the wrap');
  assert.equal(u32(v[0]![1]!, 24), 0xffffffce);
});

test('GRO-T5.6: prepend rules (PSH, smaller, larger onto a single or a merged item)', () => {
  // p with PSH cannot be prepended.
  assert.deepEqual(shapes(coalesce([t4('A', 'B', 100, 101), t4('A', 'B', 100, 1, { flags: TCP_ACK | TCP_PSH })])), [[10, 140], [10, 140]]);
  // A smaller p cannot be prepended.
  assert.deepEqual(shapes(coalesce([t4('A', 'B', 100, 101), t4('A', 'B', 50, 51)])), [[10, 140], [10, 90]]);
  // A larger p may be prepended onto a single: gso_size grows (GRO-T6, GRO-A5).
  const w = coalesce([t4('A', 'B', 50, 101), t4('A', 'B', 100, 1)]);
  assert.deepEqual(shapes(w), [[10, 140, 50]]);
  assert.equal(hdr(w[0]!).gsoSize, 100);
  // ... but not onto an item that already merged fragments.
  assert.deepEqual(shapes(coalesce([t4('A', 'B', 50, 101), t4('A', 'B', 50, 151), t4('A', 'B', 100, 1)])), [[10, 90, 50], [10, 140]]);
});

test('GRO-T5.4: TCP prepend is also bounded by 65535', () => {
  const input = [...seqRun(45, 1448, (s) => t4('A', 'B', 1448, s + 1448)), t4('A', 'B', 1448, 1)];
  const w = coalesce(input);
  assert.deepEqual(shapes(w), [[10, 1488, ...Array<number>(44).fill(1448)], [10, 1488]]);
});

test('GRO-T5.7: non-adjacent segments of one flow start new items', () => {
  assert.deepEqual(shapes(coalesce([t4('A', 'B', 100, 1), t4('A', 'B', 100, 500)])), [[10, 140], [10, 140]]);
  assert.deepEqual(shapes(coalesce([t4('A', 'B', 100, 1), t4('A', 'B', 100, 1)])), [[10, 140], [10, 140]], 'duplicate');
});

test('D-2: prepending onto a PSH head keeps PSH on the new head; the item still refuses appends', () => {
  const input = [t4('A', 'B', 100, 101, { flags: TCP_ACK | TCP_PSH }), t4('A', 'B', 100, 1), t4('A', 'B', 100, 201)];
  const w = coalesce(input);
  assert.deepEqual(shapes(w), [[10, 140, 100], [10, 140]]);
  assert.equal(w[0]![1], input[1]);
  assert.equal(w[0]![1]![33], TCP_ACK | TCP_PSH);
  assertWritesValid(w);
});

test('D-2: PSH set by an append survives a later prepend', () => {
  const input = [t4('A', 'B', 100, 101), t4('A', 'B', 100, 201, { flags: TCP_ACK | TCP_PSH }), t4('A', 'B', 100, 1)];
  const w = coalesce(input);
  assert.deepEqual(shapes(w), [[10, 140, 100, 100]]);
  assert.equal(w[0]![1]![33], TCP_ACK | TCP_PSH);
});

test('GRO-U1: each UDP disqualifier makes a no-op; the UDP length field is never checked', () => {
  const badLen = u4('A', 'B', 100);
  badLen[3] = badLen[3]! ^ 1;
  const mf = u4('A', 'B', 100, { fragField: 0x2000 });
  const frag = u4('A', 'B', 100, { fragField: 0x0010 });
  const empty = u4('A', 'B', 0);
  const v6len = u6('A', 'B', 100);
  v6len[4] = 1;
  for (const [what, p] of [['IPv4 length', badLen], ['MF', mf], ['fragment offset', frag], ['payload 0', empty]] as const) {
    const w = coalesce([u4('A', 'B', 100), p], { udp: true });
    assert.equal(w.length, 2, what);
    assert.equal(w[1]![1], p);
  }
  assert.equal(coalesce([u6('A', 'B', 100), v6len], { udp: true }).length, 2);
  // UDP length field wrong, everything else right: still merges.
  const odd = u4('A', 'B', 100);
  odd[24] = 0x12;
  fixTransportChecksum(odd);
  assert.deepEqual(shapes(coalesce([u4('A', 'B', 100), odd], { udp: true })), [[10, 128, 100]]);
});

test('GRO-U2: only the newest item of a UDP flow is considered', () => {
  // 100 (item 1), 150 (larger: item 2), 100 joins item 2 although item 1 would take it.
  const w = coalesce([u4('A', 'B', 100), u4('A', 'B', 150), u4('A', 'B', 100)], { udp: true });
  assert.deepEqual(shapes(w), [[10, 128], [10, 178, 100]]);
  assert.equal(hdr(w[1]!).gsoSize, 150, 'UDP gso_size never changes after creation (GRO-U3)');
});

test('GRO-U2 / GRO-L1: UDP items stop at 65535 bytes', () => {
  const input = Array.from({ length: 60 }, () => u4('A', 'B', 1200));
  const w = coalesce(input, { udp: true });
  // 28 + 54 × 1200 = 64828 ≤ 65535; one more would exceed.
  assert.deepEqual(shapes(w), [[10, 1228, ...Array<number>(53).fill(1200)], [10, 1228, 1200, 1200, 1200, 1200, 1200]]);
});

test('GRO-U3: a packet with a bad checksum becomes an item known invalid, never re-validated', () => {
  const c = new Coalescer({ udp: true });
  const input = [u4('A', 'B', 100), corrupt(u4('A', 'B', 100)), u4('A', 'B', 100), u4('A', 'B', 100)];
  const { writes } = c.coalesce(input);
  assert.deepEqual(shapes(writes), [[10, 128], [10, 128], [10, 128, 100]]);
  assert.equal(c.stats.checksumFailures, 1, 'csumKnownInvalid spares the second validation');
});

test('GRO-U3 / PIT-3: a UDP datagram with checksum 0 is never coalesced', () => {
  const a = u4('A', 'B', 100);
  const b = u4('A', 'B', 100);
  a[26] = a[27] = b[26] = b[27] = 0;
  assert.deepEqual(shapes(coalesce([a, b], { udp: true })), [[10, 128], [10, 128]]);
});

test('GRO-U4: when UDP cannot coalesce the packet always starts a new item', () => {
  const w = coalesce([u4('A', 'B', 100), u4('A', 'B', 100, { ttl: 1 }), u4('A', 'B', 100, { ttl: 1 })], { udp: true });
  assert.deepEqual(shapes(w), [[10, 128], [10, 128, 100]]);
});

test('GRO-S1: an item records the head\'s own values (seq, gso size, PSH)', () => {
  // Item from seq 1 payload 60; 61 (60) appends; 121 (60) appends; gso stays 60.
  const w = coalesce([t4('A', 'B', 60, 1), t4('A', 'B', 60, 61), t4('A', 'B', 60, 121)]);
  assert.deepEqual(shapes(w), [[10, 100, 60, 60]]);
  assert.equal(hdr(w[0]!).gsoSize, 60);
});

test('GRO-L3: batches larger than 128 packets and flows grow on demand', () => {
  const input: Uint8Array[] = [];
  for (let f = 0; f < 300; f++) input.push(t4('A', 'B', 10, 1, { srcPort: 1000 + f }));
  for (let f = 0; f < 300; f++) input.push(t4('A', 'B', 10, 11, { srcPort: 1000 + f }));
  const w = coalesce(input);
  assert.equal(w.length, 300);
  w.forEach((v, f) => {
    assert.deepEqual(v.map((b) => b.length), [10, 50, 10]);
    assert.equal(u16(v[1]!, 20), 1000 + f);
  });
});

test('GRO-L4: a full item does not stop later packets from trying older items', () => {
  // Item 1 (seq 1, 1448) and item 2 (far away, 45 × 1448 = full). A packet
  // adjacent to item 1 arrives after item 2 was filled: it still appends to item 1.
  const far = 10_000_000;
  const input = [t4('A', 'B', 1448, 1), ...seqRun(46, 1448, (s) => t4('A', 'B', 1448, far + s)), t4('A', 'B', 1448, 1449)];
  const w = coalesce(input);
  assert.deepEqual(shapes(w), [[10, 1488, 1448], [10, 1488, ...Array<number>(44).fill(1448)], [10, 1488]]);
});

test('GRO-A1/GRO-A6: single items and no-ops: zero header, packet bytes untouched', () => {
  const input = [t4('A', 'B', 100, 1), u4('A', 'B', 100), t4('A', 'B', 100, 1, { flags: TCP_SYN })];
  const pristine = clonePackets(input);
  const w = coalesce(input, { udp: true });
  assert.equal(w.length, 3);
  w.forEach((v, i) => {
    assert.ok(isZero(v[0]!));
    assert.deepEqual(v[1], pristine[i]);
  });
});

test('GRO-A2: coalesced TCPv6 header and head', () => {
  const w = coalesce([t6('A', 'B', 1000, 1), t6('A', 'B', 1000, 1001), t6('A', 'B', 500, 2001)]);
  assert.deepEqual(shapes(w), [[10, 1060, 1000, 500]]);
  assert.deepEqual(hdr(w[0]!), { needsCsum: true, gsoType: GSO_TCPV6, hdrLen: 60, gsoSize: 1000, csumStart: 40, csumOffset: 16 });
  assert.equal(u16(w[0]![1]!, 4), 2520);
  assert.equal(u16(w[0]![1]!, 56), pseudoHeaderSumFor(w[0]![1]!, 6, 2520));
});

test('GRO-A3: coalesced UDPv4 header and head', () => {
  const w = coalesce([u4('A', 'B', 1200), u4('A', 'B', 1200), u4('A', 'B', 7)], { udp: true });
  assert.deepEqual(hdr(w[0]!), { needsCsum: true, gsoType: GSO_UDP_L4, hdrLen: 28, gsoSize: 1200, csumStart: 20, csumOffset: 6 });
  const head = w[0]![1]!;
  assert.equal(u16(head, 2), 28 + 2407);
  assert.equal(u16(head, 24), 8 + 2407);
  assert.equal(u16(head, 26), pseudoHeaderSumFor(head, 17, 8 + 2407));
  assert.equal(~checksumSum(head, 0, 20, 0) & 0xffff, 0);
});

test('GRO-A4 / SG-1: fragments are views on the caller\'s buffers; only head headers change', () => {
  const backing = new Uint8Array(1000);
  const a = t4('A', 'B', 100, 1);
  const b = t4('A', 'B', 100, 101);
  backing.set(a, 0);
  backing.set(b, 300);
  const pa = backing.subarray(0, 140);
  const pb = backing.subarray(300, 440);
  const before = backing.slice();
  const w = coalesce([pa, pb]);
  assert.equal(w[0]![1], pa, 'index 1 is the caller\'s packet itself');
  const frag = w[0]![2]!;
  assert.equal(frag.buffer, backing.buffer);
  assert.equal(frag.byteOffset, 340);
  assert.equal(frag.length, 100);
  backing[400] = backing[400]! ^ 0xff;
  assert.equal(frag[60], backing[400], 'no copy: a later change shows through');
  backing[400] = backing[400]! ^ 0xff;
  // Only the head's header bytes differ.
  for (let i = 0; i < backing.length; i++) {
    if (backing[i] !== before[i]) assert.ok(i < 40, `byte ${i} outside the head header changed`);
  }
  assert.notEqual(w[0]![0]!.buffer, backing.buffer, 'the vnet header is not in the caller\'s memory');
});

test('GRO-A5: gso_size equals the head payload; fragments are ≤ it, all but the last equal', () => {
  const w = coalesce([t4('A', 'B', 100, 101), t4('A', 'B', 100, 201), t4('A', 'B', 100, 1), t4('A', 'B', 30, 301)]);
  assert.deepEqual(shapes(w), [[10, 140, 100, 100, 30]]);
  assert.equal(hdr(w[0]!).gsoSize, 100);
});

test('D-6: packetCounts gives the packets per write; stats count packets, writes and merges', () => {
  const c = new Coalescer({ udp: true });
  const list: WriteList = c.coalesce([t4('A', 'B', 100, 1), t4('A', 'B', 100, 101), u4('A', 'B', 10), t4('A', 'B', 100, 201), t4('A', 'C', 1, 1)]);
  assert.deepEqual(list.packetCounts, [3, 1, 1]);
  assert.deepEqual(c.stats, { packets: 5, writes: 3, coalescedWrites: 1, coalescedPackets: 3, checksumFailures: 0 });
  c.coalesce([u4('A', 'B', 10), u4('A', 'B', 10)]);
  assert.deepEqual(c.stats, { packets: 7, writes: 4, coalescedWrites: 2, coalescedPackets: 5, checksumFailures: 0 });
});

test('uncoalesced: restores the head bytes and returns the original packets in vector order', () => {
  const c = new Coalescer({ udp: true });
  const input = [
    t4('A', 'B', 100, 101),
    t4('A', 'B', 100, 201, { flags: TCP_ACK | TCP_PSH }),
    t4('A', 'B', 100, 1),
    u6('A', 'B', 100),
    u6('A', 'B', 90),
    t6('A', 'C', 5, 9),
  ];
  const pristine = clonePackets(input);
  const { writes } = c.coalesce(input);
  assert.deepEqual(shapes(writes), [[10, 140, 100, 100], [10, 148, 90], [10, 65]]);
  assert.notDeepEqual(input[2], pristine[2], 'the head was rewritten');
  const tcp = c.uncoalesced(0);
  assert.deepEqual(tcp, [input[2], input[0], input[1]]);
  assert.equal(tcp[0], input[2]);
  const udp = c.uncoalesced(1);
  assert.deepEqual(udp, [input[3], input[4]]);
  assert.deepEqual(c.uncoalesced(2), [input[5]]);
  assert.deepEqual(c.uncoalesced(0), [input[2], input[0], input[1]], 'idempotent');
  input.forEach((p, i) => assert.deepEqual(p, pristine[i], `packet ${i} restored byte for byte`));
  assert.throws(() => c.uncoalesced(3), { code: 'ERR_INVALID_ARG' });
  assert.throws(() => c.uncoalesced(-1), { code: 'ERR_INVALID_ARG' });
});

test('coalesce(): each call returns fresh header buffers', () => {
  const a = coalesce([t4('A', 'B', 100, 1), t4('A', 'B', 100, 101)]);
  const b = coalesce([t4('A', 'B', 100, 1), t4('A', 'C', 100, 101)]);
  assert.notEqual(a[0]![0], b[0]![0]);
  assert.equal(a[0]![0]![1], GSO_TCPV4, 'the first result is not overwritten by the second call');
  assert.equal(b[0]![0]![1], GSO_NONE);
});

test('CK-4 opt-in: without checksumsVerified a bad checksum prevents merging; flags skip only flagged packets (GRO-T4, GRO-U3)', () => {
  const c = new Coalescer({ udp: true });
  const batch = () => [t4('A', 'B', 100, 1), corrupt(t4('A', 'B', 100, 101)), u4('A', 'B', 100), corrupt(u4('A', 'B', 100))];
  const off = c.coalesce(batch());
  assert.deepEqual(shapes(off.writes), [[10, 140], [10, 140], [10, 128], [10, 128]], 'default validates: nothing merges');
  assert.equal(c.stats.checksumFailures, 2);
  const flagged = c.coalesce(batch(), { checksumsVerified: Uint8Array.of(1, 0, 1, 0) });
  assert.deepEqual(shapes(flagged.writes), [[10, 140], [10, 140], [10, 128], [10, 128]], 'unflagged bad packets still validated');
  assert.equal(c.stats.checksumFailures, 4);
  const again = c.coalesce(batch());
  assert.deepEqual(shapes(again.writes), shapes(off.writes), 'the option does not outlive its call');
  assert.equal(c.stats.checksumFailures, 6);
  // A (false) claim for every packet is taken at its word: proof the validation is skipped.
  const claimed = c.coalesce(batch(), { checksumsVerified: true });
  assert.deepEqual(shapes(claimed.writes), [[10, 140, 100], [10, 128, 100]]);
  assert.equal(c.stats.checksumFailures, 6);
  // The public coalesce() always validates.
  assert.deepEqual(shapes(coalesce(batch(), { udp: true })), [[10, 140], [10, 140], [10, 128], [10, 128]]);
});

test('CK-4 opt-in: with checksumsVerified valid inputs give byte-identical writes, rewrites and counts (TS-15..TS-32 shapes)', () => {
  const build = () => [
    t4('A', 'B', 1448, 1), t4('A', 'B', 1448, 1449), t6('A', 'B', 1000, 5), t4('A', 'C', 100, 1),
    t6('A', 'B', 1000, 1005, { flags: TCP_ACK | TCP_PSH }), t4('A', 'B', 1448, 2897), t6('A', 'B', 1000, 4005),
    u4('A', 'B', 500), u4('A', 'B', 500), u6('B', 'A', 300), u6('B', 'A', 300), u4('A', 'B', 200),
    t4('B', 'A', 0, 9), t4('A', 'C', 100, 101), t4('A', 'C', 100, 201, { flags: TCP_ACK | TCP_PSH }),
  ];
  for (const claim of [true, new Uint8Array(15).fill(1)]) {
    const plain = new Coalescer({ udp: true });
    const trusting = new Coalescer({ udp: true });
    const a = build();
    const b = build();
    const want = plain.coalesce(a);
    const got = trusting.coalesce(b, { checksumsVerified: claim });
    assert.ok(want.writes.some((v) => v.length > 3), 'the batch coalesces');
    assert.deepEqual(got.packetCounts, want.packetCounts);
    assert.deepEqual(got.writes.map(concat), want.writes.map(concat));
    assert.deepEqual(b, a, 'heads rewritten identically');
    assert.deepEqual(trusting.stats, plain.stats);
  }
});
