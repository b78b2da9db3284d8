import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Arena } from '../../src/core/arena.js';
import { checksumSum, fold, pseudoHeaderSum, repairZeroUdp6Checksum, transportChecksumValid, writeIPv4HeaderChecksum } from '../../src/core/checksum.js';
import { V4, V6, buildPacket, zeroChecksumUdpPayload } from './packets.js';

/** Byte-pair reference for CK-1, written the slow obvious way. */
function referenceSum(d: Uint8Array, start: number, end: number, initial: number): number {
  let x = initial;
  for (let i = start; i < end; i += 2) x += (d[i]! << 8) | (i + 1 < end ? d[i + 1]! : 0);
  while (x > 0xffff) x = (x & 0xffff) + Math.floor(x / 65536);
  return x;
}

function lcg(seed: number): () => number {
  let s = seed >>> 0;
  return () => (s = (Math.imul(s, 1664525) + 1013904223) >>> 0);
}

test('CK-1: sum matches the byte-pair reference in plain buffers and arenas, any length and alignment', () => {
  const rnd = lcg(1);
  const arena = new Arena(1 << 17);
  for (let t = 0; t < 3000; t++) {
    const n = rnd() % 2100;
    const off = rnd() % 70;
    const buf = new Uint8Array(n + off);
    if (t % 5 === 0) buf.fill(0xff);
    else for (let i = 0; i < buf.length; i++) buf[i] = rnd() & 0xff;
    const initial = t % 3 === 0 ? rnd() : rnd() & 0xffff;
    const want = referenceSum(buf, off, off + n, initial);
    assert.equal(checksumSum(buf, off, off + n, initial), want, `plain n=${n} off=${off}`);
    arena.bytes.set(buf, 3);
    const view = arena.bytes.subarray(3, 3 + buf.length);
    assert.equal(checksumSum(view, off, off + n, initial), want, `arena n=${n} off=${off}`);
  }
});

test('CK-1: a 64 KiB run and a run longer than the scratch area', () => {
  const rnd = lcg(2);
  for (const n of [65535, 65536, 200001]) {
    const buf = new Uint8Array(n);
    for (let i = 0; i < n; i++) buf[i] = rnd() & 0xff;
    assert.equal(checksumSum(buf, 0, n, 0), referenceSum(buf, 0, n, 0));
  }
});

test('CK-1: the result is folded, never inverted, and 0xFFFF survives', () => {
  assert.equal(checksumSum(new Uint8Array([0xff, 0xff]), 0, 2, 0), 0xffff);
  assert.equal(checksumSum(new Uint8Array([0x00, 0x01, 0xff, 0xff]), 0, 4, 0), 0x0001);
  assert.equal(checksumSum(new Uint8Array([0x12]), 0, 1, 0), 0x1200);
  assert.equal(fold(0x1ffff), 0x0001);
});

test('CK-2: pseudo-header sum over IPv4 addresses, protocol and length', () => {
  const p = buildPacket({ version: 4, proto: 'tcp', src: V4.A, dst: V4.B, payload: 0 });
  // 192.0.2.1 + 192.0.2.2 + 0x0006 + 20 = c000+0201+c000+0202+6+14
  const want = fold(0xc000 + 0x0201 + 0xc000 + 0x0202 + 6 + 20);
  assert.equal(pseudoHeaderSum(p, 12, 8, 6, 20), want);
});

test('CK-4/CK-5: built packets verify; one flipped byte fails', () => {
  const p = buildPacket({ version: 4, proto: 'udp', src: V4.A, dst: V4.B, payload: 100 });
  assert.equal(transportChecksumValid(p, 20, 17), true);
  assert.equal(~checksumSum(p, 0, 20, 0) & 0xffff, 0, 'IPv4 header checksum verifies');
  p[60] ^= 1;
  assert.equal(transportChecksumValid(p, 20, 17), false);
  p[8] = 1;
  writeIPv4HeaderChecksum(p);
  assert.equal(~checksumSum(p, 0, 20, 0) & 0xffff, 0);
});

test('CK-1: plain views with a long prefix or suffix (sub-view copy path) and views on a shared buffer', () => {
  const rnd = lcg(3);
  const big = new Uint8Array(9000);
  for (let i = 0; i < big.length; i++) big[i] = rnd() & 0xff;
  for (let t = 0; t < 300; t++) {
    const a = rnd() % 4000;
    const b = a + (rnd() % 4000);
    const view = big.subarray(rnd() % 100, 8900);
    const s = Math.min(a, view.length);
    const e = Math.min(b, view.length);
    assert.equal(checksumSum(view, s, e, 7), referenceSum(view, s, e, 7), `${s}..${e}`);
  }
});

test('CK-1: Arena.sum by absolute offset and Arena.copySum (copy + sum in one pass)', () => {
  const rnd = lcg(4);
  const arena = new Arena(1 << 18);
  for (let i = 0; i < 100000; i++) arena.bytes[i] = rnd() & 0xff;
  for (let t = 0; t < 500; t++) {
    const src = rnd() % 60000;
    const n = rnd() % 3000;
    const initial = rnd() & 0xffff;
    const want = referenceSum(arena.bytes, src, src + n, initial);
    assert.equal(arena.sum(src, n, initial), want);
    const dst = 120000 + (rnd() % 1000);
    arena.bytes.fill(0x5a, dst - 16, dst + n + 16);
    assert.equal(arena.copySum(dst, src, n, initial), want, `copySum n=${n}`);
    assert.deepEqual(arena.bytes.subarray(dst, dst + n), arena.bytes.subarray(src, src + n));
    assert.equal(arena.bytes[dst - 1], 0x5a, 'no write before dst');
    assert.equal(arena.bytes[dst + n], 0x5a, 'no write past dst + n');
  }
  // dst <= src overlap is allowed (forward copy).
  const copy = arena.bytes.slice(1000, 3000);
  assert.equal(arena.copySum(900, 1000, 2000, 0), referenceSum(copy, 0, 2000, 0));
  assert.deepEqual(arena.bytes.subarray(900, 2900), copy);
});

test('CK-3: a partial checksum (field = Pseudo) completed over the region equals the full checksum', () => {
  const rnd = lcg(5);
  for (let t = 0; t < 50; t++) {
    const p = buildPacket({ version: 4, proto: t % 2 ? 'tcp' : 'udp', src: V4.A, dst: V4.C, payload: rnd() % 1500, fill: rnd() & 0xff });
    const at = 20 + (t % 2 ? 16 : 6);
    const full = (p[at]! << 8) | p[at + 1]!;
    const pseudo = pseudoHeaderSum(p, 12, 8, t % 2 ? 6 : 17, p.length - 20);
    // Partial: store Pseudo; a consumer that sums the region including it
    // and inverts gets the full checksum.
    p[at] = pseudo >> 8;
    p[at + 1] = pseudo & 0xff;
    assert.equal(~checksumSum(p, 20, p.length, 0) & 0xffff, full);
    // Full: zero the field, store ~Sum(region, Pseudo): whatever it held before.
    p[at] = rnd() & 0xff;
    p[at + 1] = rnd() & 0xff;
    p[at] = 0;
    p[at + 1] = 0;
    const c = ~checksumSum(p, 20, p.length, pseudo) & 0xffff;
    assert.equal(c, full);
  }
});

test('CK-5: the IPv4 header checksum over iphLen bytes, with options and garbage in bytes 10..11', () => {
  const p = buildPacket({ version: 4, proto: 'udp', src: V4.A, dst: V4.B, payload: 10 });
  const q = new Uint8Array(p.length + 8);
  q.set(p.subarray(0, 20));
  q.set([0x94, 4, 0, 0, 1, 1, 1, 0], 20); // router alert + padding: IHL 7
  q.set(p.subarray(20), 28);
  q[0] = 0x47;
  q[10] = 0xde;
  q[11] = 0xad;
  writeIPv4HeaderChecksum(q, 28);
  assert.equal(~referenceSum(q, 0, 28, 0) & 0xffff, 0);
  assert.notEqual((q[10]! << 8) | q[11]!, 0xdead);
});

test('CK-4: no special case for a UDP checksum of 0 ("no checksum" fails Valid)', () => {
  const p = buildPacket({ version: 4, proto: 'udp', src: V4.A, dst: V4.B, payload: 33 });
  assert.equal(transportChecksumValid(p, 20, 17), true);
  p[26] = 0;
  p[27] = 0;
  assert.equal(transportChecksumValid(p, 20, 17), false);
});

test('CK-1: alternating between three arenas and plain buffers keeps every sum right (arena cache)', () => {
  const rnd = lcg(6);
  const arenas = [new Arena(65536), new Arena(65536), new Arena(65536)];
  const plain = new Uint8Array(5000);
  for (const a of arenas) for (let i = 0; i < 5000; i++) a.bytes[i] = rnd() & 0xff;
  for (let i = 0; i < 5000; i++) plain[i] = rnd() & 0xff;
  for (let t = 0; t < 400; t++) {
    const k = rnd() % 4;
    const view = k === 3 ? plain : arenas[k]!.bytes.subarray(0, 5000);
    const s = rnd() % 2000;
    const e = s + (rnd() % 3000);
    assert.equal(checksumSum(view, s, e, 1), referenceSum(view, s, e, 1), `buffer ${k} ${s}..${e}`);
  }
});

test('CK-1: runs ending at the very end of an arena (masked-tail fallback) for sum and copySum', () => {
  const rnd = lcg(7);
  const arena = new Arena(65536);
  const size = arena.bytes.length;
  for (let i = 0; i < size; i++) arena.bytes[i] = rnd() & 0xff;
  for (let n = 0; n <= 70; n++) {
    const at = size - n;
    const want = referenceSum(arena.bytes, at, size, 3);
    assert.equal(arena.sum(at, n, 3), want, `sum of the last ${n} bytes`);
    assert.equal(checksumSum(arena.bytes, at, size, 3), want);
    // copySum reading the last bytes, writing exactly n bytes elsewhere.
    arena.bytes.fill(0x77, 1000, 1100);
    assert.equal(arena.copySum(1010, at, n, 3), want, `copySum of the last ${n} bytes`);
    assert.deepEqual(arena.bytes.subarray(1010, 1010 + n), arena.bytes.subarray(at, size));
    assert.equal(arena.bytes[1010 + n], 0x77, 'nothing written past dst + n');
    // copySum writing up to the very end of the memory.
    const src = arena.bytes.slice(2000, 2000 + n);
    arena.bytes.set(src, 3000);
    assert.equal(arena.copySum(size - n, 3000, n, 0), referenceSum(src, 0, n, 0));
    assert.deepEqual(arena.bytes.subarray(size - n), src);
  }
});

test('CK-1: runs over several 256 KiB blocks, extreme bytes included (no lane overflow)', () => {
  const rnd = lcg(8);
  const arena = new Arena(3 << 20);
  const n = 1_100_001;
  for (const fill of [0xff, 0x00, -1]) {
    if (fill >= 0) arena.bytes.fill(fill, 0, n);
    else for (let i = 0; i < n; i++) arena.bytes[i] = rnd() & 0xff;
    const want = referenceSum(arena.bytes, 0, n, 0);
    assert.equal(arena.sum(0, n, 0), want, `fill ${fill}`);
    assert.equal(arena.copySum(1 << 21, 0, 1 << 20, 0), referenceSum(arena.bytes, 0, 1 << 20, 0), `copySum fill ${fill}`);
    assert.equal(arena.bytes[(1 << 21) + 12345], arena.bytes[12345]);
  }
});

test('repairZeroUdp6Checksum: an IPv6 UDP zero that verifies becomes 0xFFFF; anything else is untouched', () => {
  const zero = (): Uint8Array => buildPacket({ version: 6, proto: 'udp', src: V6.A, dst: V6.B, srcPort: 40000, dstPort: 53, payload: zeroChecksumUdpPayload(6, V6.A, V6.B, 40000, 53, 64) });
  const p = zero();
  assert.deepEqual([p[46], p[47]], [0, 0], 'crafted: the computed checksum is 0');
  assert.equal(transportChecksumValid(p, 40, 17), true, 'ones\' complement: 0 and 0xFFFF verify alike');
  assert.equal(repairZeroUdp6Checksum(p), true);
  assert.deepEqual([p[46], p[47]], [0xff, 0xff]);
  assert.equal(transportChecksumValid(p, 40, 17), true);
  assert.equal(repairZeroUdp6Checksum(p), false, 'already repaired');

  const leftAlone = (what: string, q: Uint8Array): void => {
    const copy = Uint8Array.from(q);
    assert.equal(repairZeroUdp6Checksum(q), false, what);
    assert.deepEqual(q, copy, `${what}: unchanged`);
  };
  const unverified = buildPacket({ version: 6, proto: 'udp', src: V6.A, dst: V6.B, payload: 64, fill: 3 });
  unverified[46] = 0;
  unverified[47] = 0;
  leftAlone('a zero that does not verify (no checksum computed)', unverified);
  leftAlone('a valid non-zero checksum', buildPacket({ version: 6, proto: 'udp', src: V6.A, dst: V6.B, payload: 64 }));
  const v4 = buildPacket({ version: 4, proto: 'udp', src: V4.A, dst: V4.B, srcPort: 40000, dstPort: 53, payload: zeroChecksumUdpPayload(4, V4.A, V4.B, 40000, 53, 64) });
  leftAlone('IPv4 (0 means no checksum there)', v4);
  const tcp = buildPacket({ version: 6, proto: 'tcp', src: V6.A, dst: V6.B, payload: 64 });
  tcp[46] = 0;
  tcp[47] = 0;
  leftAlone('TCP', tcp);
  leftAlone('padded past the IPv6 payload length', Uint8Array.from([...zero(), 0, 0]));
  leftAlone('truncated', zero().subarray(0, 47));
});
