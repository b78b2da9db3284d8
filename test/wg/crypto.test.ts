import { test } from 'node:test';
import assert from 'node:assert/strict';
import { errorCode as code } from '../error-code.js';
import {
  aeadOpen,
  aeadSeal,
  clampPrivateKey,
  constantTimeEqual,
  dh,
  generatePrivateKey,
  hash,
  hmac,
  kdf1,
  kdf2,
  kdf3,
  keyFromBase64,
  keyFromHex,
  keyToBase64,
  keyToHex,
  mac,
  publicKeyOf,
  tai64n,
  timestampAfter,
  xaeadOpen,
  xaeadSeal,
} from '../../src/wg/crypto.js';
import { hex, unhex } from './kat.js';

const TEXT = new TextEncoder();

test('HASH is BLAKE2s-256 (RFC 7693 Appendix B: "abc")', () => {
  assert.equal(hex(hash(TEXT.encode('abc'))), '508c5e8c327c14e2e1a72ba34eeb452f37458b209ed63a294d999b4c86675982');
  assert.equal(hex(hash(TEXT.encode('a'), TEXT.encode('bc'))), hex(hash(TEXT.encode('abc'))), 'parts are concatenated');
});

test('MAC is keyed BLAKE2s with 16-byte output; HMAC is RFC 2104 over BLAKE2s (not keyed BLAKE2s)', () => {
  const key = new Uint8Array(32).fill(7);
  const m = mac(key, TEXT.encode('x'));
  assert.equal(m.length, 16);
  assert.notDeepEqual(m, mac(new Uint8Array(32).fill(8), TEXT.encode('x')), 'depends on the key');
  const h = hmac(key, TEXT.encode('x'));
  assert.equal(h.length, 32);
  assert.notEqual(hex(h), hex(hash(key, TEXT.encode('x'))));
});

// Vectors of wireguard-go's device/kdf_test.go (key, input, t0, t1, t2).
const KDF_VECTORS = [
  ['746573742d6b6579', '746573742d696e707574', '6f0e5ad38daba1bea8a0d213688736f19763239305e0f58aba697f9ffc41c633', 'df1194df20802a4fe594cde27e92991c8cae66c366e8106aaa937a55fa371e8a', 'fac6e2745a325f5dc5d11a5b165aad08b0ada28e7b4e666b7c077934a4d76c24'],
  ['776972656775617264', '776972656775617264', '491d43bbfdaa8750aaf535e334ecbfe5129967cd64635101c566d4caefda96e8', '1e71a379baefd8a79aa4662212fcafe19a23e2b609a3db7d6bcba8f560e3d25f', '31e1ae48bddfbe5de38f295e5452b1909a1b4e38e183926af3780b0c1e1f0160'],
  ['', '', '8387b46bf43eccfcf349552a095d8315c4055beb90208fb1be23b894bc2ed5d0', '58a0e5f6faefccf4807bff1f05fa8a9217945762040bcec2f4b4a62bdfe0e86e', '0ce6ea98ec548f8e281e93e32db65621c45eb18dc6f0a7ad94178610a2f7338e'],
] as const;

test('KDF_1/2/3 (§5.4, HKDF with HMAC-BLAKE2s) match the wireguard-go vectors', () => {
  for (const [key, input, t0, t1, t2] of KDF_VECTORS) {
    const k = unhex(key);
    const i = unhex(input);
    assert.equal(hex(kdf1(k, i)), t0);
    assert.deepEqual(kdf2(k, i).map(hex), [t0, t1]);
    assert.deepEqual(kdf3(k, i).map(hex), [t0, t1, t2]);
  }
});

test('DH is X25519 (RFC 7748 §6.1 vectors); DH-PUBKEY; an all-zero result (low-order point) is ERR_WG_KEY', () => {
  const alice = unhex('77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a');
  const bob = unhex('5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb');
  assert.equal(hex(publicKeyOf(alice)), '8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a');
  assert.equal(hex(publicKeyOf(bob)), 'de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f');
  const shared = '4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742';
  assert.equal(hex(dh(alice, publicKeyOf(bob))), shared);
  assert.equal(hex(dh(bob, publicKeyOf(alice))), shared);
  assert.equal(code(() => dh(alice, new Uint8Array(32))), 'ERR_WG_KEY', 'zero point');
  assert.equal(code(() => dh(alice, Uint8Array.of(1, ...new Uint8Array(31)))), 'ERR_WG_KEY', 'order-1 point');
  assert.equal(code(() => dh(alice, new Uint8Array(31))), 'ERR_WG_KEY', 'short key');
  assert.equal(code(() => publicKeyOf(new Uint8Array(33))), 'ERR_WG_KEY');
});

test('DH-GENERATE clamps (RFC 7748 §5) and uses the injected random source', () => {
  const k = generatePrivateKey(() => new Uint8Array(32).fill(0xff));
  assert.equal(k[0], 0xf8);
  assert.equal(k[31], 0x7f);
  assert.deepEqual(clampPrivateKey(new Uint8Array(32)).slice(31), Uint8Array.of(0x40));
  assert.notDeepEqual(generatePrivateKey(), generatePrivateKey(), 'default source is random');
});

test('AEAD (§5.4): ChaCha20-Poly1305 with nonce 0^32 ‖ LE64(counter); tampering, wrong counter or wrong AD fail', () => {
  const key = new Uint8Array(32).fill(1);
  const pt = TEXT.encode('hello wireguard');
  const ad = TEXT.encode('ad');
  const ct = aeadSeal(key, 5, pt, ad);
  assert.equal(ct.length, pt.length + 16);
  assert.deepEqual(aeadOpen(key, 5, ct, ad), pt);
  assert.deepEqual(aeadOpen(key, 5n, ct, ad), pt, 'bigint counter');
  assert.equal(aeadOpen(key, 6, ct, ad), null);
  assert.equal(aeadOpen(key, 5, ct, TEXT.encode('ae')), null);
  const bad = Uint8Array.from(ct);
  bad[0]! ^= 1;
  assert.equal(aeadOpen(key, 5, bad, ad), null);
  assert.equal(aeadOpen(key, 5, ct.subarray(0, 15), ad), null, 'shorter than a tag');
  assert.deepEqual(aeadOpen(key, 0, aeadSeal(key, 0, new Uint8Array(0), ad), ad), new Uint8Array(0), 'empty plaintext');
  assert.notDeepEqual(aeadSeal(key, 2 ** 40, pt, ad), aeadSeal(key, 0, pt, ad), 'high counter bits reach the nonce');
});

test('XAEAD (§5.4.7): XChaCha20-Poly1305 round trip; tampering fails', () => {
  const key = new Uint8Array(32).fill(3);
  const nonce = new Uint8Array(24).fill(9);
  const ct = xaeadSeal(key, nonce, new Uint8Array(16).fill(4), new Uint8Array(16));
  assert.equal(ct.length, 32);
  assert.deepEqual(xaeadOpen(key, nonce, ct, new Uint8Array(16)), new Uint8Array(16).fill(4));
  assert.equal(xaeadOpen(key, nonce, ct, new Uint8Array(16).fill(1)), null);
  assert.equal(xaeadOpen(key, new Uint8Array(23), ct, new Uint8Array(16)), null, 'bad nonce size');
});

test('TAI64N (§5.4.2): 2^62 + 10 + seconds, big-endian, nanoseconds whitened to 2^24; ordering', () => {
  assert.equal(hex(tai64n(0)), '400000000000000a00000000');
  assert.equal(hex(tai64n(1_000)), '400000000000000b00000000');
  const t = tai64n(1_500); // 500 ms = 500000000 ns, low 24 bits cleared
  assert.equal(Buffer.from(t).readUInt32BE(8), 500_000_000 & ~0xffffff);
  assert.ok(timestampAfter(tai64n(2_000), tai64n(1_999)));
  assert.ok(!timestampAfter(tai64n(1_000), tai64n(1_001)), 'within one whitening step they are equal');
  assert.ok(!timestampAfter(tai64n(1_000), tai64n(1_000)));
});

test('constant-time equality; key encodings (base64 as wg, lowercase hex as UAPI)', () => {
  assert.ok(constantTimeEqual(Uint8Array.of(1, 2), Uint8Array.of(1, 2)));
  assert.ok(!constantTimeEqual(Uint8Array.of(1, 2), Uint8Array.of(1, 3)));
  assert.ok(!constantTimeEqual(Uint8Array.of(1, 2), Uint8Array.of(1)));
  const key = Uint8Array.from({ length: 32 }, (_, i) => i * 7);
  assert.deepEqual(keyFromBase64(keyToBase64(key)), key);
  assert.equal(keyToHex(key), hex(key));
  assert.deepEqual(keyFromHex(keyToHex(key).toUpperCase()), key);
  assert.equal(code(() => keyFromBase64('abc')), 'ERR_WG_KEY');
  assert.equal(code(() => keyFromHex('zz'.repeat(32))), 'ERR_WG_KEY');
  assert.equal(code(() => keyToHex(new Uint8Array(31))), 'ERR_WG_KEY');
});
