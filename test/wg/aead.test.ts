/**
 * The transport AEAD (whitepaper 5.4.6): the addon's batch path against
 * per-packet node:crypto (the reference; both are OpenSSL underneath, reached
 * by different code), padding, tamper and wrong-key rejection, counters, key
 * destruction, and the fallback when the addon lacks the OpenSSL symbols.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as crypto from 'node:crypto';
import {
  AEAD_BAD_LENGTH, AEAD_BAD_TAG, AEAD_COUNTER_RANGE, AEAD_KEY_DESTROYED, AEAD_NO_KEY, AEAD_TOO_BIG, TRANSPORT_OVERHEAD,
  createTransportCipher, paddedLength, type TransportCipher,
} from '../../src/wg/aead.js';
import { VectunError } from '../../src/errors.js';

const native = createTransportCipher({ implementation: 'native' });
const node = createTransportCipher({ implementation: 'node' });
const STRIDE = 1600;

/** Deterministic bytes (a seeded sha256 stream). */
function bytes(n: number, seed: number): Uint8Array {
  const out = new Uint8Array(n);
  let block = crypto.createHash('sha256').update(`seed ${seed}`).digest();
  for (let i = 0; i < n; i += 32) {
    out.set(block.subarray(0, Math.min(32, n - i)), i);
    block = crypto.createHash('sha256').update(block).digest();
  }
  return out;
}

function sealAll(c: TransportCipher, key: Uint8Array, packets: Uint8Array[], counter: number, mtu: number, receiver = 0xa1b2c3d4): Uint8Array[] {
  const k = c.key(key);
  const out = new Uint8Array(STRIDE * packets.length);
  const lengths = new Int32Array(packets.length);
  assert.equal(c.seal(k, receiver, counter, packets, packets.length, mtu, out, STRIDE, lengths), packets.length);
  return packets.map((_, i) => out.slice(i * STRIDE, i * STRIDE + lengths[i]!));
}

function openAll(c: TransportCipher, key: Uint8Array, messages: Uint8Array[]): { lengths: number[]; counters: number[]; plain: Uint8Array[]; opened: number } {
  const k = c.key(key);
  const out = new Uint8Array(STRIDE * messages.length);
  const lengths = new Int32Array(messages.length);
  const counters = new Float64Array(messages.length);
  const opened = c.open(messages.map(() => k), messages, messages.length, out, STRIDE, lengths, counters);
  return {
    opened, lengths: [...lengths], counters: [...counters],
    plain: messages.map((_, i) => out.slice(i * STRIDE, i * STRIDE + Math.max(0, lengths[i]!))),
  };
}

test('the native AEAD resolves OpenSSL from the node binary on this build', () => {
  assert.equal(native.native, true);
  assert.equal(node.native, false);
});

test('whitepaper 5.4.6: native batch seal equals per-packet node:crypto, byte for byte, sizes 0..1500', () => {
  const key = bytes(32, 1);
  const packets = [0, 1, 15, 16, 17, 40, 63, 64, 576, 1279, 1280, 1419, 1420, 1421, 1500].map((n, i) => bytes(n, 100 + i));
  const a = sealAll(native, key, packets, 77, 1420);
  const b = sealAll(node, key, packets, 77, 1420);
  assert.deepEqual(a, b);
  // And both equal a message built by hand from node:crypto's one-shot API.
  for (let i = 0; i < packets.length; i++) {
    const p = packets[i]!;
    const padded = paddedLength(p.length, 1420);
    const nonce = Buffer.alloc(12);
    nonce.writeBigUInt64LE(BigInt(77 + i), 4);
    const c = crypto.createCipheriv('chacha20-poly1305', key, nonce, { authTagLength: 16 });
    const body = Buffer.concat([c.update(Buffer.concat([p, Buffer.alloc(padded - p.length)])), c.final(), c.getAuthTag()]);
    const header = Buffer.alloc(16);
    header.writeUInt32LE(4, 0);
    header.writeUInt32LE(0xa1b2c3d4, 4);
    header.writeBigUInt64LE(BigInt(77 + i), 8);
    assert.deepEqual(a[i], new Uint8Array(Buffer.concat([header, body])), `packet ${i} (${p.length} bytes)`);
  }
});

test('whitepaper 5.4.6: padding to a multiple of 16, never beyond the MTU, none when longer than the MTU', () => {
  assert.equal(paddedLength(0, 1420), 0);
  assert.equal(paddedLength(1, 1420), 16);
  assert.equal(paddedLength(16, 1420), 16);
  assert.equal(paddedLength(1419, 1420), 1420); // 1424 would pass the MTU
  assert.equal(paddedLength(1410, 1420), 1420);
  assert.equal(paddedLength(1500, 1420), 1500);
  const sealed = sealAll(native, bytes(32, 2), [bytes(1419, 3), bytes(1, 4), new Uint8Array(0)], 0, 1420);
  assert.deepEqual(sealed.map((m) => m.length), [1420 + TRANSPORT_OVERHEAD, 16 + TRANSPORT_OVERHEAD, TRANSPORT_OVERHEAD]);
});

for (const [sealer, opener] of [['native', 'node'], ['node', 'native'], ['native', 'native']] as const) {
  test(`sealed by ${sealer}, opened by ${opener}: plaintexts (with padding) and counters come back`, () => {
    const c = { native, node };
    const key = bytes(32, 5);
    const packets = [bytes(100, 6), bytes(1420, 7), new Uint8Array(0)];
    const sealed = sealAll(c[sealer], key, packets, 2 ** 40 + 3, 1420);
    const r = openAll(c[opener], key, sealed);
    assert.equal(r.opened, 3);
    assert.deepEqual(r.counters, [2 ** 40 + 3, 2 ** 40 + 4, 2 ** 40 + 5]);
    assert.deepEqual(r.lengths, [112, 1420, 0]);
    assert.deepEqual(r.plain[0]!.subarray(0, 100), packets[0]);
    assert.deepEqual(r.plain[0]!.subarray(100), new Uint8Array(12));
    assert.deepEqual(r.plain[1], packets[1]);
  });
}

for (const c of [native, node]) {
  const name = c.native ? 'native' : 'node:crypto';
  test(`${name}: a flipped bit anywhere after the header, or the wrong key, fails the tag; output slot stays clean`, () => {
    const key = bytes(32, 8);
    const [m] = sealAll(c, key, [bytes(200, 9)], 5, 1420);
    const tampered: Uint8Array[] = [];
    for (const at of [8, 16, 100, m!.length - 1]) {
      const t = m!.slice();
      t[at]! ^= 0x01;
      tampered.push(t);
    }
    const r = openAll(c, key, tampered);
    assert.equal(r.opened, 0);
    assert.deepEqual(r.lengths, [AEAD_BAD_TAG, AEAD_BAD_TAG, AEAD_BAD_TAG, AEAD_BAD_TAG]);
    for (const p of r.plain) assert.equal(p.length, 0);
    const wrong = openAll(c, bytes(32, 10), [m!]);
    assert.deepEqual(wrong.lengths, [AEAD_BAD_TAG]);
    // The receiver index (bytes 4..8) is not authenticated by the AEAD (it selects the key).
    const idx = m!.slice();
    idx[4]! ^= 0xff;
    assert.deepEqual(openAll(c, key, [idx]).lengths, [200 + 8]);
  });

  test(`${name}: short messages, missing and destroyed keys, oversized plaintexts, counters >= 2^53`, () => {
    const key = bytes(32, 11);
    const k = c.key(key);
    const [good] = sealAll(c, key, [bytes(10, 12)], 1, 1420);
    const big = new Uint8Array(STRIDE + TRANSPORT_OVERHEAD + 1);
    const huge = good!.slice();
    new DataView(huge.buffer).setBigUint64(8, 2n ** 53n, true);
    const messages = [new Uint8Array(31), good!, big, huge];
    const out = new Uint8Array(STRIDE * 4);
    const lengths = new Int32Array(4);
    const counters = new Float64Array(4);
    assert.equal(c.open([k, null, k, k], messages, 4, out, STRIDE, lengths, counters), 0);
    assert.deepEqual([...lengths], [AEAD_BAD_LENGTH, AEAD_NO_KEY, AEAD_BAD_LENGTH, AEAD_COUNTER_RANGE]);
    k.destroy();
    k.destroy();
    assert.equal(k.destroyed, true);
    assert.equal(c.open([k], [good!], 1, out, STRIDE, lengths, counters), 0);
    assert.equal(lengths[0], AEAD_KEY_DESTROYED);
    assert.equal(c.seal(k, 1, 0, [good!], 1, 1420, out, STRIDE, lengths), AEAD_KEY_DESTROYED);
    const k2 = c.key(key);
    assert.equal(c.seal(k2, 1, 0, [bytes(1500, 13)], 1, 1500, out, 1500, lengths), 1);
    assert.equal(lengths[0], AEAD_TOO_BIG);
    // Sizes the output cannot hold, and counters that would pass 2^53, are refused as a whole.
    assert.ok(c.seal(k2, 1, 0, [good!, good!], 2, 1420, out.subarray(0, STRIDE), STRIDE, lengths) < 0);
    assert.ok(c.seal(k2, 1, 2 ** 53 - 1, [good!, good!], 2, 1420, out, STRIDE, lengths) < 0);
  });
}

test('a key must be 32 bytes (ERR_WG_CRYPTO)', () => {
  for (const c of [native, node]) {
    assert.throws(() => c.key(new Uint8Array(31)), (e: unknown) => e instanceof VectunError && e.code === 'ERR_WG_CRYPTO');
  }
});

test('an addon without the OpenSSL symbols falls back to node:crypto; demanding native then fails', () => {
  const missing = { aeadAvailable: () => 0 };
  assert.equal(createTransportCipher({ binding: missing }).native, false);
  assert.equal(createTransportCipher({ binding: {} }).native, false);
  assert.throws(() => createTransportCipher({ implementation: 'native', binding: missing }),
    (e: unknown) => e instanceof VectunError && e.code === 'ERR_WG_CRYPTO');
});
