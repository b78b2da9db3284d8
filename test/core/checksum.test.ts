import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Arena } from '../../src/core/arena.js';
import { checksumSum, fold, pseudoHeaderSum, transportChecksumValid, writeIPv4HeaderChecksum } from '../../src/core/checksum.js';
import { V4, buildPacket } from './packets.js';

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
