/**
 * Properties of GRO coalescing, with fast-check (fixed seed: FC_SEED, default
 * 42; bounded runs: FC_RUNS, default 150).
 *
 * 1. Round trip (GRO-T5/T6, GRO-A2/A3 against RD-9): `segment` of every write
 *    of `coalesce` gives back the original packets byte for byte, for the
 *    batches the spec merges in a way that re-splits identically: one flow,
 *    in-order sequence numbers (TCP), every payload the same size except a
 *    possibly shorter last one, the same IP/TCP header fields on every packet
 *    (TTL/TOS/DF, window, options, flow label) except that the IPv4 ID
 *    counts up by one per packet (RD-9 rebuilds ID + i), and PSH at most on
 *    the last packet (RD-9 clears it on all others). UDP checksums of 0x0000
 *    are sent as 0xFFFF (the same value in one's complement; D-4 makes the
 *    read side produce 0xFFFF).
 * 2. Invariants for any batch (valid, corrupted, malformed, mixed flows):
 *    every input is carried exactly once (GRO-L5), the caps hold (GRO-L1,
 *    GRO-L2), single packets are untouched with a zero header (GRO-A1/A6),
 *    coalesced writes have right lengths and a partial checksum that verifies
 *    once completed (GRO-A2..A5), and uncoalesced() restores every input.
 * 3. The implementation agrees byte for byte (writes and in-place rewrites)
 *    with a slow model written directly from the spec's text below.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { Coalescer, coalesce } from '../../src/core/gro.js';
import { segment } from '../../src/core/gso.js';
import { checksumSum, pseudoHeaderSumFor, transportChecksumValid, writeIPv4HeaderChecksum } from '../../src/core/checksum.js';
import { decodeVirtioNetHeader } from '../../src/core/virtio.js';
import { TCP_ACK, TCP_PSH, TCP_FIN, TCP_SYN, V4, V6, buildPacket, clonePackets, concat } from './packets.js';

const seed = Number(process.env.FC_SEED ?? 42);
const numRuns = Number(process.env.FC_RUNS ?? 150);
const params = { seed, numRuns };

const u16 = (p: Uint8Array, at: number) => (p[at]! << 8) | p[at + 1]!;

// ---- 1. Round trip ----

const roundTripBatch = fc.record({
  version: fc.constantFrom(4 as const, 6 as const),
  proto: fc.constantFrom('tcp' as const, 'udp' as const),
  count: fc.integer({ min: 1, max: 70 }),
  gso: fc.integer({ min: 1, max: 1500 }),
  lastShort: fc.option(fc.integer({ min: 1, max: 1500 }), { nil: undefined }),
  seq: fc.integer({ min: 0, max: 0xffffffff }),
  ack: fc.integer({ min: 0, max: 0xffffffff }),
  ipId: fc.integer({ min: 0, max: 0xffff }),
  window: fc.integer({ min: 0, max: 0xffff }),
  ttl: fc.integer({ min: 1, max: 255 }),
  tos: fc.integer({ min: 0, max: 255 }),
  flowLabel: fc.integer({ min: 0, max: 0xfffff }),
  df: fc.boolean(),
  optionWords: fc.integer({ min: 0, max: 10 }),
  optionFill: fc.integer({ min: 0, max: 255 }),
  pshLast: fc.boolean(),
  srcPort: fc.integer({ min: 0, max: 0xffff }),
  dstPort: fc.integer({ min: 0, max: 0xffff }),
  fill: fc.integer({ min: 0, max: 255 }),
});

test('property: segment(coalesce(x)) returns x for in-order equal-size same-flow batches (GRO-A2, GRO-A3, RD-9)', () => {
  fc.assert(
    fc.property(roundTripBatch, (b) => {
      const packets: Uint8Array[] = [];
      let seq = b.seq;
      for (let i = 0; i < b.count; i++) {
        const last = i === b.count - 1;
        const payload = last && b.lastShort !== undefined ? Math.min(b.lastShort, b.gso) : b.gso;
        const p = buildPacket({
          version: b.version,
          proto: b.proto,
          src: b.version === 4 ? V4.A : V6.A,
          dst: b.version === 4 ? V4.B : V6.B,
          srcPort: b.srcPort,
          dstPort: b.dstPort,
          payload,
          fill: (b.fill + i) & 0xff,
          seq,
          ack: b.ack,
          flags: last && b.pshLast ? TCP_ACK | TCP_PSH : TCP_ACK,
          window: b.window,
          options: b.optionWords > 0 ? new Uint8Array(b.optionWords * 4).fill(b.optionFill) : undefined,
          ttl: b.ttl,
          tos: b.tos,
          ipId: (b.ipId + i) & 0xffff,
          fragField: b.df ? 0x4000 : 0,
          flowLabel: b.flowLabel,
        });
        if (b.proto === 'udp') {
          const at = (b.version === 4 ? 20 : 40) + 6;
          if (p[at] === 0 && p[at + 1] === 0) p[at] = p[at + 1] = 0xff; // see note 1 above
        }
        packets.push(p);
        seq = (seq + payload) >>> 0;
      }
      const original = clonePackets(packets);
      const writes = coalesce(packets, { udp: true });
      const resplit = writes.flatMap((w) => segment(concat(w)));
      assert.equal(resplit.length, original.length);
      resplit.forEach((p, i) => assert.deepEqual(p, original[i], `packet ${i}`));
      // Merged as far as the limits allow: only GRO-L1 splits these batches.
      const hdrLen = original[0]!.length - b.gso;
      let expected = 1;
      let used = 0;
      for (const p of original) {
        const payload = p.length - hdrLen;
        if (used + payload > 65535 - hdrLen) {
          expected++;
          used = 0;
        }
        used += payload;
      }
      assert.equal(writes.length, expected);
    }),
    params,
  );
});

// ---- 2. Invariants over arbitrary batches ----

interface Recipe {
  kind: 'tcp4' | 'tcp6' | 'udp4' | 'udp6' | 'junk';
  flow: number;
  ack: number;
  /** next: continues its flow; back: just before the flow's first seq; jump: anywhere nearby. */
  seqMode: 'next' | 'back' | 'jump';
  seqIdx: number;
  payload: number;
  flags: number;
  ttl: number;
  opts: number;
  corrupt: boolean;
  /** Header damage that must make a candidate a no-op or a non-candidate. */
  damage: 'none' | 'ipLen' | 'mf' | 'fragOffset' | 'dataOffset' | 'ihl' | 'truncate';
  junk: Uint8Array;
}

const recipe: fc.Arbitrary<Recipe> = fc.record({
  kind: fc.constantFrom('tcp4', 'tcp4', 'tcp4', 'tcp6', 'udp4', 'udp4', 'udp6', 'junk') as fc.Arbitrary<Recipe['kind']>,
  flow: fc.constantFrom(0, 0, 0, 1, 2),
  ack: fc.constantFrom(1, 1, 1, 1, 2),
  seqMode: fc.constantFrom('next', 'next', 'next', 'next', 'next', 'back', 'jump') as fc.Arbitrary<Recipe['seqMode']>,
  seqIdx: fc.integer({ min: 0, max: 12 }),
  payload: fc.constantFrom(0, 1, 50, 99, 100, 100, 100, 100, 100, 100, 101, 200, 1448),
  flags: fc.constantFrom(TCP_ACK, TCP_ACK, TCP_ACK, TCP_ACK, TCP_ACK, TCP_ACK, TCP_ACK | TCP_PSH, TCP_SYN, TCP_ACK | TCP_FIN),
  ttl: fc.constantFrom(64, 64, 64, 64, 64, 63),
  opts: fc.constantFrom(0, 0, 0, 0, 0, 1, 2),
  corrupt: fc.integer({ min: 0, max: 19 }).map((n) => n === 0),
  damage: fc.constantFrom(
    ...Array<'none'>(24).fill('none'),
    'ipLen' as const,
    'mf' as const,
    'fragOffset' as const,
    'dataOffset' as const,
    'ihl' as const,
    'truncate' as const,
  ),
  junk: fc.uint8Array({ minLength: 0, maxLength: 80 }),
});

const OPTS = [undefined, new Uint8Array([1, 1, 8, 10, 0, 0, 0, 1, 0, 0, 0, 2]), new Uint8Array([1, 1, 8, 10, 0, 0, 0, 3, 0, 0, 0, 2])];

/**
 * Builds packets that continue, precede or jump around their flow's sequence
 * space, so appends, prepends and misses all happen. The base is sometimes
 * near 2^32, exercising wrap-around (PIT-11).
 */
function buildBatch(recipes: readonly Recipe[], base: number): Uint8Array[] {
  const next = new Map<string, number>();
  const first = new Map<string, number>();
  return recipes.map((r) => {
    if (r.kind === 'junk') {
      const j = r.junk.slice();
      // Some junk looks like IP, to reach deeper checks.
      if (j.length > 0 && r.flow === 1) j[0] = 0x45;
      if (j.length > 0 && r.flow === 2) j[0] = 0x60;
      return j;
    }
    const key = `${r.kind}/${r.flow}/${r.ack}`;
    let seq: number;
    if (r.seqMode === 'next' && next.has(key)) seq = next.get(key)!;
    else if (r.seqMode === 'back' && first.has(key)) seq = (first.get(key)! - r.payload) >>> 0;
    else seq = (base + r.seqIdx * 100) >>> 0;
    if (!first.has(key) || r.seqMode === 'back') first.set(key, seq);
    next.set(key, (seq + r.payload) >>> 0);
    const v = r.kind.endsWith('4') ? 4 : 6;
    const p = buildPacket({
      version: v,
      proto: r.kind.startsWith('tcp') ? 'tcp' : 'udp',
      src: v === 4 ? V4.A : V6.A,
      dst: v === 4 ? V4.B : V6.B,
      srcPort: 1 + r.flow,
      payload: r.payload,
      seq,
      ack: r.ack,
      flags: r.flags,
      ttl: r.ttl,
      options: OPTS[r.opts],
      fill: r.seqIdx,
    });
    if (r.corrupt && p.length > 0) p[p.length - 1] = p[p.length - 1]! ^ 0x01;
    const iph = v === 4 ? 20 : 40;
    switch (r.damage) {
      case 'ipLen':
        p[v === 4 ? 3 : 5] = p[v === 4 ? 3 : 5]! ^ 0x04;
        break;
      case 'mf':
        if (v === 4) p[6] = p[6]! | 0x20;
        break;
      case 'fragOffset':
        if (v === 4) p[7] = 1;
        break;
      case 'dataOffset':
        if (r.kind.startsWith('tcp')) p[iph + 12] = r.seqIdx % 2 === 0 ? 0x40 : 0xf0;
        break;
      case 'ihl':
        if (v === 4) p[0] = 0x46;
        break;
      case 'truncate':
        return p.subarray(0, Math.min(p.length, 20 + r.seqIdx * 4));
    }
    return p;
  });
}

const batchArb = fc.record({
  recipes: fc.array(recipe, { minLength: 0, maxLength: 60, size: 'large' }),
  base: fc.constantFrom(1, 0xfffffc00),
  udp: fc.boolean(),
  tcp: fc.constantFrom(true, true, true, false),
});

function checkInvariants(input: readonly Uint8Array[], pristine: readonly Uint8Array[], writes: readonly (readonly Uint8Array[])[], counts: readonly number[]): void {
  assert.ok(writes.length <= input.length, 'GRO-L5');
  assert.equal(counts.length, writes.length);
  const seen = new Array<number>(input.length).fill(0);
  const byBuffer = new Map<ArrayBufferLike, number>();
  input.forEach((p, i) => byBuffer.set(p.buffer, i));
  writes.forEach((v, w) => {
    assert.ok(v.length >= 2 && v.length <= 1024, 'GRO-L2');
    assert.equal(counts[w], v.length - 1);
    const head = v[1]!;
    const hi = input.indexOf(head);
    assert.ok(hi >= 0, 'the head is an input packet');
    seen[hi]!++;
    if (v.length === 2) {
      assert.ok(v[0]!.every((x) => x === 0), 'GRO-A1/A6 zero header');
      assert.deepEqual(head, pristine[hi], 'GRO-A1: untouched');
      return;
    }
    const h = decodeVirtioNetHeader(v[0]!);
    const iph = head[0]! >> 4 === 4 ? 20 : 40;
    const udp = h.gsoType === 5;
    const thLen = udp ? 8 : (head[iph + 12]! >> 4) * 4;
    const f = concat(v.slice(1));
    assert.ok(f.length <= 65535, 'GRO-L1');
    assert.equal(h.hdrLen, iph + thLen);
    assert.equal(h.csumStart, iph);
    assert.equal(h.gsoSize, head.length - iph - thLen, 'GRO-A5: gso_size = head payload');
    for (let k = 2; k < v.length; k++) {
      const frag = v[k]!;
      const fi = byBuffer.get(frag.buffer)!;
      assert.ok(fi !== undefined, 'fragments are views on input packets');
      seen[fi]!++;
      assert.equal(frag.byteOffset, input[fi]!.byteOffset + iph + thLen, 'a fragment is the payload after the headers');
      assert.equal(frag.length, input[fi]!.length - iph - thLen);
      assert.deepEqual(input[fi]!.subarray(iph + thLen), pristine[fi]!.subarray(iph + thLen), 'payload bytes never change');
      if (k < v.length - 1) assert.equal(frag.length, h.gsoSize, 'GRO-A5');
      else assert.ok(frag.length <= h.gsoSize, 'GRO-A5 last');
    }
    if (iph === 20) {
      assert.equal(u16(f, 2), f.length);
      assert.equal(~checksumSum(f, 0, 20, 0) & 0xffff, 0);
    } else assert.equal(u16(f, 4), f.length - 40);
    if (udp) assert.equal(u16(f, iph + 4), f.length - iph);
    const at = iph + h.csumOffset;
    const c = ~checksumSum(f, iph, f.length, 0) & 0xffff;
    f[at] = c >> 8;
    f[at + 1] = c & 0xff;
    assert.ok(transportChecksumValid(f, iph, udp ? 17 : 6), 'completed partial checksum verifies (CK-3)');
  });
  seen.forEach((n, i) => assert.equal(n, 1, `packet ${i} carried exactly once`));
}

test('property: any batch: each packet once, caps, lengths and checksums valid; uncoalesced restores (GRO-L1, GRO-L2, GRO-L5, GRO-A1..A6)', () => {
  fc.assert(
    fc.property(batchArb, ({ recipes, base, udp, tcp }) => {
      const input = buildBatch(recipes, base);
      const pristine = clonePackets(input);
      const c = new Coalescer({ udp, tcp });
      const { writes, packetCounts } = c.coalesce(input);
      checkInvariants(input, pristine, writes, packetCounts);
      const back = writes.flatMap((_, w) => c.uncoalesced(w));
      assert.equal(back.length, input.length);
      input.forEach((p, i) => assert.deepEqual(p, pristine[i], `uncoalesced restored packet ${i}`));
    }),
    params,
  );
});

// ---- 3. Differential test against a model of the spec ----

interface ModelItem {
  key: string;
  vec: Uint8Array[];
  iph: number;
  thLen: number;
  seq: number;
  psh: boolean;
  gso: number;
  payloadLen: number;
  csumKnownInvalid: boolean;
}

/** Sec. 5 transcribed as literally as possible: slow, allocation-heavy, obvious. */
function model(packets: readonly Uint8Array[], tcpOn: boolean, udpOn: boolean): Uint8Array[][] {
  const out: { vec: Uint8Array[]; item?: ModelItem; udp?: boolean }[] = [];
  const tcpTable = new Map<string, ModelItem[]>();
  const udpTable = new Map<string, ModelItem[]>();
  const noop = (p: Uint8Array) => out.push({ vec: [new Uint8Array(10), p] });
  const lenOk = (p: Uint8Array, v6: boolean) => (v6 ? u16(p, 4) === p.length - 40 : u16(p, 2) === p.length);
  const fragOk = (p: Uint8Array, v6: boolean) => v6 || ((p[6]! & 0x20) === 0 && ((p[6]! & 0x1f) << 8 | p[7]!) === 0);
  const ipCompat = (a: Uint8Array, b: Uint8Array) =>
    a[0]! >> 4 === 6
      ? a[0] === b[0] && a[1]! >> 4 === b[1]! >> 4 && a[7] === b[7]
      : a[1] === b[1] && a[6]! >> 5 === b[6]! >> 5 && a[8] === b[8];
  const keyOf = (p: Uint8Array, iph: number, tcp: boolean) =>
    [p[0]! >> 4, ...p.subarray(iph === 20 ? 12 : 8, iph), ...p.subarray(iph, iph + 4), ...(tcp ? p.subarray(iph + 8, iph + 12) : [])].join(',');
  const newItem = (table: Map<string, ModelItem[]>, key: string, p: Uint8Array, iph: number, thLen: number, seq: number, psh: boolean, udp: boolean, inv: boolean) => {
    const item: ModelItem = { key, vec: [new Uint8Array(10), p], iph, thLen, seq, psh, gso: p.length - iph - thLen, payloadLen: p.length - iph - thLen, csumKnownInvalid: inv };
    out.push({ vec: item.vec, item, udp });
    const list = table.get(key) ?? [];
    list.push(item);
    table.set(key, list);
  };
  for (const p of packets) {
    // GRO-C2
    let cls: 'tcp' | 'udp' | undefined;
    const v = p.length > 0 ? p[0]! >> 4 : 0;
    if (p.length >= 28 && v === 4 && (p[0]! & 0xf) === 5) {
      if (p[9] === 6 && p.length >= 40 && tcpOn) cls = 'tcp';
      else if (p[9] === 17 && udpOn) cls = 'udp';
    } else if (p.length >= 28 && v === 6) {
      if (p[6] === 6 && p.length >= 60 && tcpOn) cls = 'tcp';
      else if (p[6] === 17 && p.length >= 48 && udpOn) cls = 'udp';
    }
    if (cls === undefined) {
      noop(p);
      continue;
    }
    const v6 = v === 6;
    const iph = v6 ? 40 : 20;
    if (cls === 'tcp') {
      // GRO-T1
      if (p.length > 65535 || !lenOk(p, v6)) { noop(p); continue; }
      const thLen = (p[iph + 12]! >> 4) * 4;
      if (thLen < 20 || thLen > 60 || p.length < iph + thLen || !fragOk(p, v6)) { noop(p); continue; }
      const flags = p[iph + 13]!;
      if (flags !== 0x10 && flags !== 0x18) { noop(p); continue; }
      const gso = p.length - iph - thLen;
      if (gso === 0) { noop(p); continue; }
      const seq = ((p[iph + 4]! << 24) | (p[iph + 5]! << 16) | (p[iph + 6]! << 8) | p[iph + 7]!) >>> 0;
      const psh = flags === 0x18;
      const key = keyOf(p, iph, true);
      const items = tcpTable.get(key);
      if (items === undefined || items.length === 0) {
        newItem(tcpTable, key, p, iph, thLen, seq, psh, false, false);
        continue;
      }
      let done = false;
      for (let i = items.length - 1; i >= 0 && !done; i--) {
        const it = items[i]!;
        const head = it.vec[1]!;
        // GRO-T5
        let can: 'append' | 'prepend' | undefined;
        if (it.vec.length >= 1024) continue;
        if (thLen !== it.thLen) continue;
        if (thLen > 20 && p.subarray(iph + 20, iph + thLen).join() !== head.subarray(iph + 20, iph + thLen).join()) continue;
        if (!ipCompat(p, head)) continue;
        if (iph + thLen + it.payloadLen + gso > 65535) continue;
        if (seq === ((it.seq + it.payloadLen) >>> 0)) {
          if (it.psh || it.payloadLen % it.gso !== 0 || gso > it.gso) continue;
          can = 'append';
        } else if (((seq + gso) >>> 0) === it.seq) {
          if (psh || gso < it.gso || (gso > it.gso && it.vec.length > 2)) continue;
          can = 'prepend';
        } else continue;
        // GRO-T6
        if (it.vec.length === 2 && !transportChecksumValid(head, iph, 6)) {
          items.splice(i, 1);
          continue;
        }
        if (!transportChecksumValid(p, iph, 6)) {
          noop(p);
          done = true;
          break;
        }
        if (can === 'prepend') {
          it.seq = seq;
          it.vec.splice(1, 1, p, head.subarray(iph + thLen));
          if (it.psh) p[iph + 13] = p[iph + 13]! | 0x08; // D-2
        } else {
          if (psh) {
            it.psh = true;
            head[iph + 13] = head[iph + 13]! | 0x08;
          }
          it.vec.push(p.subarray(iph + thLen));
        }
        it.gso = Math.max(it.gso, gso);
        it.payloadLen += gso;
        done = true;
      }
      if (!done) newItem(tcpTable, key, p, iph, thLen, seq, psh, false, false);
    } else {
      // GRO-U1
      if (p.length > 65535 || !lenOk(p, v6) || p.length < iph + 8 || !fragOk(p, v6) || p.length - iph - 8 === 0) { noop(p); continue; }
      const gso = p.length - iph - 8;
      const key = keyOf(p, iph, false);
      const items = udpTable.get(key);
      if (items === undefined) {
        newItem(udpTable, key, p, iph, 8, 0, false, true, false);
        continue;
      }
      const it = items[items.length - 1]!;
      const head = it.vec[1]!;
      let inv = false;
      if (it.vec.length < 1024 && ipCompat(p, head) && it.payloadLen % it.gso === 0 && gso <= it.gso && iph + 8 + it.payloadLen + gso <= 65535) {
        if (it.vec.length === 2 && (it.csumKnownInvalid || !transportChecksumValid(head, iph, 17))) {
          // item invalid: new item below
        } else if (!transportChecksumValid(p, iph, 17)) {
          inv = true;
        } else {
          it.vec.push(p.subarray(iph + 8));
          it.payloadLen += gso;
          continue;
        }
      }
      newItem(udpTable, key, p, iph, 8, 0, false, true, inv);
    }
  }
  // GRO-A1..A6
  for (const o of out) {
    const it = o.item;
    if (it === undefined || o.vec.length === 2) continue;
    const h = o.vec[1]!;
    const total = it.iph + it.thLen + it.payloadLen;
    if (it.iph === 20) {
      h[2] = total >> 8;
      h[3] = total & 0xff;
      writeIPv4HeaderChecksum(h, 20);
    } else {
      h[4] = (total - 40) >> 8;
      h[5] = (total - 40) & 0xff;
    }
    if (o.udp) {
      h[it.iph + 4] = (8 + it.payloadLen) >> 8;
      h[it.iph + 5] = (8 + it.payloadLen) & 0xff;
    }
    const at = it.iph + (o.udp ? 6 : 16);
    const ps = pseudoHeaderSumFor(h, o.udp ? 17 : 6, total - it.iph);
    h[at] = ps >> 8;
    h[at + 1] = ps & 0xff;
    const hdr = o.vec[0]!;
    const le = (off: number, x: number) => {
      hdr[off] = x & 0xff;
      hdr[off + 1] = x >> 8;
    };
    hdr[0] = 1;
    hdr[1] = o.udp ? 5 : it.iph === 20 ? 1 : 4;
    le(2, it.iph + it.thLen);
    le(4, it.gso);
    le(6, it.iph);
    le(8, o.udp ? 6 : 16);
  }
  return out.map((o) => o.vec);
}

test('property: Coalescer agrees byte for byte with a literal model of sec. 5 (writes and in-place rewrites)', (t) => {
  // One reused Coalescer across all runs also exercises D-1 and WR-2.
  const c = new Coalescer();
  let prepends = 0;
  let udpWrites = 0;
  fc.assert(
    fc.property(batchArb, ({ recipes, base, udp, tcp }) => {
      const a = buildBatch(recipes, base);
      const b = clonePackets(a);
      c.tcp = tcp;
      c.udp = udp;
      const got = c.coalesce(a).writes;
      for (const v of got) {
        if (v.length > 2 && a.indexOf(v[1]!) > a.findIndex((p) => p.buffer === v[2]!.buffer)) prepends++;
        if (v.length > 2 && v[0]![1] === 5) udpWrites++;
      }
      const want = model(b, tcp, udp);
      assert.deepEqual(
        got.map((v) => v.map((x) => x.length)),
        want.map((v) => v.map((x) => x.length)),
      );
      got.forEach((v, i) => assert.deepEqual(concat(v), concat(want[i]!), `write ${i}`));
      a.forEach((p, i) => assert.deepEqual(p, b[i], `input ${i} rewritten identically`));
    }),
    { seed, numRuns: numRuns * 2 },
  );
  // The generator must reach the interesting paths, or the comparison proves little.
  assert.ok(c.stats.coalescedWrites > numRuns / 4, `coalesced writes: ${c.stats.coalescedWrites}`);
  t.diagnostic(`model comparison: ${c.stats.coalescedWrites} coalesced writes, ${c.stats.checksumFailures} checksum failures, ${prepends} prepends, ${udpWrites} UDP writes`);
  assert.ok(c.stats.checksumFailures > 0, 'checksum failures exercised');
  assert.ok(prepends > 0, 'prepends exercised');
  assert.ok(udpWrites > 0, 'UDP coalescing exercised');
});

test('property: the model itself reproduces TS-15 (sanity check of the oracle)', () => {
  const t = (dst: readonly number[], seq: number) => buildPacket({ version: 4, proto: 'tcp', src: V4.A, dst, payload: 100, seq });
  const u = (dst: readonly number[]) => buildPacket({ version: 4, proto: 'udp', src: V4.A, dst, payload: 100 });
  const t6 = (dst: readonly number[], seq: number) => buildPacket({ version: 6, proto: 'tcp', src: V6.A, dst, payload: 100, seq });
  const u6 = () => buildPacket({ version: 6, proto: 'udp', src: V6.A, dst: V6.B, payload: 100 });
  const batch = [t(V4.B, 1), u(V4.B), u(V4.C), t(V4.B, 101), t(V4.C, 201), t6(V6.B, 1), t6(V6.B, 101), t6(V6.C, 201), u(V4.B), u6(), u6()];
  assert.deepEqual(
    model(batch, true, true).map((v) => v.map((x) => x.length)),
    [[10, 140, 100], [10, 128, 100], [10, 128], [10, 140], [10, 160, 100], [10, 160], [10, 148, 100]],
  );
});

/** The flags a truthful caller could claim: 1 where CK-4 verifies for the packet's own header layout. */
function truthfulFlags(batch: readonly Uint8Array[]): Uint8Array {
  return Uint8Array.from(batch, (p) => {
    if (p.length < 28) return 0;
    const v4 = p[0] === 0x45;
    const v6 = p[0]! >> 4 === 6;
    if (!v4 && !v6) return 0;
    const proto = v4 ? p[9]! : p[6]!;
    if (proto !== 6 && proto !== 17) return 0;
    const iph = v4 ? 20 : 40;
    if (p.length < iph + (proto === 6 ? 20 : 8)) return 0;
    return transportChecksumValid(p, iph, proto) ? 1 : 0;
  });
}

test('property: checksumsVerified with truthful flags gives byte-identical writes and rewrites (CK-4, GRO-T4, GRO-U3)', (t) => {
  const plain = new Coalescer();
  const trusting = new Coalescer();
  let skipped = 0;
  fc.assert(
    fc.property(batchArb, ({ recipes, base, udp, tcp }) => {
      const a = buildBatch(recipes, base);
      const b = clonePackets(a);
      const flags = truthfulFlags(a);
      plain.tcp = trusting.tcp = tcp;
      plain.udp = trusting.udp = udp;
      const want = plain.coalesce(a);
      const got = trusting.coalesce(b, { checksumsVerified: flags });
      assert.deepEqual(got.packetCounts, want.packetCounts);
      assert.deepEqual(got.writes.map((v) => v.map((x) => x.length)), want.writes.map((v) => v.map((x) => x.length)));
      got.writes.forEach((v, i) => assert.deepEqual(concat(v), concat(want.writes[i]!), `write ${i}`));
      a.forEach((p, i) => assert.deepEqual(b[i], p, `input ${i} rewritten identically`));
      skipped += flags.reduce((s, f) => s + f, 0);
    }),
    params,
  );
  assert.equal(trusting.stats.checksumFailures, plain.stats.checksumFailures, 'the same bad packets were found');
  assert.ok(plain.stats.checksumFailures > 0 && trusting.stats.coalescedWrites > numRuns / 4, 'bad checksums and merges exercised');
  t.diagnostic(`${skipped} packets claimed verified, ${plain.stats.checksumFailures} bad checksums`);
});
