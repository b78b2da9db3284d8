/**
 * The whitepaper's cryptographic functions (§5.4) as thin wrappers over
 * maintained libraries; nothing here is a hand-written primitive.
 *
 * - HASH, MAC, HMAC, HKDF: BLAKE2s from @noble/hashes (v1, CommonJS;
 *   node:crypto has no keyed BLAKE2s).
 * - DH, DH-GENERATE, DH-PUBKEY: X25519 through node:crypto KeyObjects.
 * - AEAD: ChaCha20-Poly1305 (node:crypto) with the 96-bit nonce
 *   `0^32 ‖ LE64(counter)`; XAEAD: XChaCha20-Poly1305 from @noble/ciphers.
 * - TAI64N timestamps, constant-time comparison, base64/hex key encodings.
 * @module
 */
import { createCipheriv, createDecipheriv, createPrivateKey, createPublicKey, diffieHellman, randomBytes, timingSafeEqual, type KeyObject } from 'node:crypto';
import { blake2s } from '@noble/hashes/blake2';
import { hmac as nobleHmac } from '@noble/hashes/hmac';
import { xchacha20poly1305 } from '@noble/ciphers/chacha';
import { VectunError } from '../errors.js';
import { AEAD_TAG_SIZE, KEY_SIZE, MAC_SIZE, TIMESTAMP_SIZE, XNONCE_SIZE } from './constants.js';

/** A source of random bytes; injectable so handshakes are reproducible in tests. */
export type RandomBytes = (length: number) => Uint8Array;

/** The default {@link RandomBytes}: node:crypto's CSPRNG. */
export const secureRandomBytes: RandomBytes = (length) => new Uint8Array(randomBytes(length));

/** HASH(input): BLAKE2s-256 of the concatenated parts. */
export function hash(...parts: Uint8Array[]): Uint8Array {
  const h = blake2s.create({});
  for (const p of parts) h.update(p);
  return h.digest();
}

/** MAC(key, input): keyed BLAKE2s with a 16-byte output (mac1, mac2, cookie). */
export function mac(key: Uint8Array, ...parts: Uint8Array[]): Uint8Array {
  const h = blake2s.create({ key, dkLen: MAC_SIZE });
  for (const p of parts) h.update(p);
  return h.digest();
}

/** HMAC(key, input): RFC 2104 HMAC over BLAKE2s-256 (§5.4, not keyed BLAKE2s). */
export function hmac(key: Uint8Array, ...parts: Uint8Array[]): Uint8Array {
  const h = nobleHmac.create(blake2s, key);
  for (const p of parts) h.update(p);
  return h.digest();
}

const ONE = Uint8Array.of(1);
const TWO = Uint8Array.of(2);
const THREE = Uint8Array.of(3);

/** KDF_1(key, input) of §5.4: HKDF with BLAKE2s, one 32-byte output. */
export function kdf1(key: Uint8Array, input: Uint8Array): Uint8Array {
  const prk = hmac(key, input);
  const t0 = hmac(prk, ONE);
  prk.fill(0);
  return t0;
}

/** KDF_2(key, input) of §5.4: two 32-byte outputs. */
export function kdf2(key: Uint8Array, input: Uint8Array): [Uint8Array, Uint8Array] {
  const prk = hmac(key, input);
  const t0 = hmac(prk, ONE);
  const t1 = hmac(prk, t0, TWO);
  prk.fill(0);
  return [t0, t1];
}

/** KDF_3(key, input) of §5.4: three 32-byte outputs. */
export function kdf3(key: Uint8Array, input: Uint8Array): [Uint8Array, Uint8Array, Uint8Array] {
  const prk = hmac(key, input);
  const t0 = hmac(prk, ONE);
  const t1 = hmac(prk, t0, TWO);
  const t2 = hmac(prk, t1, THREE);
  prk.fill(0);
  return [t0, t1, t2];
}

// DER framings of raw X25519 keys (RFC 8410): PKCS#8 private, SPKI public.
const PKCS8_X25519_PREFIX = Uint8Array.from([0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x6e, 0x04, 0x22, 0x04, 0x20]);
const SPKI_X25519_PREFIX = Uint8Array.from([0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x6e, 0x03, 0x21, 0x00]);

function checkKeyLength(key: Uint8Array, what: string): void {
  if (!(key instanceof Uint8Array) || key.length !== KEY_SIZE) {
    throw new VectunError('ERR_WG_KEY', `${what} must be ${KEY_SIZE} bytes`);
  }
}

/** A node:crypto KeyObject for a raw 32-byte X25519 private key. */
export function x25519PrivateKeyObject(privateKey: Uint8Array): KeyObject {
  checkKeyLength(privateKey, 'a private key');
  const der = new Uint8Array(PKCS8_X25519_PREFIX.length + KEY_SIZE);
  der.set(PKCS8_X25519_PREFIX);
  der.set(privateKey, PKCS8_X25519_PREFIX.length);
  return createPrivateKey({ key: Buffer.from(der.buffer, der.byteOffset, der.length), format: 'der', type: 'pkcs8' });
}

function publicKeyObject(publicKey: Uint8Array): KeyObject {
  checkKeyLength(publicKey, 'a public key');
  const der = new Uint8Array(SPKI_X25519_PREFIX.length + KEY_SIZE);
  der.set(SPKI_X25519_PREFIX);
  der.set(publicKey, SPKI_X25519_PREFIX.length);
  return createPublicKey({ key: Buffer.from(der.buffer, der.byteOffset, der.length), format: 'der', type: 'spki' });
}

/** Clamps a Curve25519 private key in place (RFC 7748 §5), as `wg genkey` does. */
export function clampPrivateKey(key: Uint8Array): Uint8Array {
  key[0]! &= 248;
  key[31] = (key[31]! & 127) | 64;
  return key;
}

/** DH-GENERATE(): a fresh clamped private key from `random`. */
export function generatePrivateKey(random: RandomBytes = secureRandomBytes): Uint8Array {
  const key = random(KEY_SIZE);
  checkKeyLength(key, 'the random source');
  return clampPrivateKey(Uint8Array.from(key));
}

/** DH-PUBKEY(private): the X25519 public key. @throws VectunError `ERR_WG_KEY` for a wrong length. */
export function publicKeyOf(privateKey: Uint8Array | KeyObject): Uint8Array {
  const obj = privateKey instanceof Uint8Array ? x25519PrivateKeyObject(privateKey) : privateKey;
  const spki = createPublicKey(obj).export({ format: 'der', type: 'spki' });
  return new Uint8Array(spki.subarray(spki.length - KEY_SIZE));
}

/**
 * DH(private, public): the X25519 shared secret.
 * @throws VectunError `ERR_WG_KEY` if the result is all zeros (a low-order
 * public key), which wireguard-go rejects too, or a key has the wrong length.
 */
export function dh(privateKey: Uint8Array | KeyObject, publicKey: Uint8Array): Uint8Array {
  let shared: Buffer;
  try {
    shared = diffieHellman({
      privateKey: privateKey instanceof Uint8Array ? x25519PrivateKeyObject(privateKey) : privateKey,
      publicKey: publicKeyObject(publicKey),
    });
  } catch (e) {
    if (e instanceof VectunError) throw e;
    // OpenSSL refuses an all-zero X25519 result itself.
    throw new VectunError('ERR_WG_KEY', 'X25519 with this public key fails (low-order point)', { cause: e });
  }
  const out = new Uint8Array(shared);
  if (isZero(out)) throw new VectunError('ERR_WG_KEY', 'X25519 result is all zeros (low-order public key)');
  return out;
}

/** True if every byte is zero; runs over the whole array (no early exit). */
export function isZero(bytes: Uint8Array): boolean {
  let acc = 0;
  for (let i = 0; i < bytes.length; i++) acc |= bytes[i]!;
  return acc === 0;
}

/** Constant-time equality of two byte strings (length is not secret). */
export function constantTimeEqual(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && timingSafeEqual(a, b);
}

function aeadNonce(counter: number | bigint): Buffer {
  const nonce = Buffer.alloc(12);
  nonce.writeBigUInt64LE(BigInt(counter), 4);
  return nonce;
}

/** AEAD(key, counter, plaintext, ad): ChaCha20-Poly1305, returns ciphertext ‖ tag. */
export function aeadSeal(key: Uint8Array, counter: number | bigint, plaintext: Uint8Array, ad: Uint8Array): Uint8Array {
  const c = createCipheriv('chacha20-poly1305', key, aeadNonce(counter), { authTagLength: AEAD_TAG_SIZE });
  c.setAAD(ad, { plaintextLength: plaintext.length });
  const body = c.update(plaintext);
  c.final();
  const out = new Uint8Array(body.length + AEAD_TAG_SIZE);
  out.set(body);
  out.set(c.getAuthTag(), body.length);
  return out;
}

/** AEAD open: the plaintext, or `null` if the tag does not authenticate (or the input is shorter than a tag). */
export function aeadOpen(key: Uint8Array, counter: number | bigint, ciphertext: Uint8Array, ad: Uint8Array): Uint8Array | null {
  if (ciphertext.length < AEAD_TAG_SIZE) return null;
  const bodyLength = ciphertext.length - AEAD_TAG_SIZE;
  const d = createDecipheriv('chacha20-poly1305', key, aeadNonce(counter), { authTagLength: AEAD_TAG_SIZE });
  d.setAAD(ad, { plaintextLength: bodyLength });
  d.setAuthTag(ciphertext.subarray(bodyLength));
  const body = d.update(ciphertext.subarray(0, bodyLength));
  try {
    d.final();
  } catch {
    return null;
  }
  return new Uint8Array(body);
}

/** XAEAD(key, nonce, plaintext, ad): XChaCha20-Poly1305 (cookie replies, §5.4.7). */
export function xaeadSeal(key: Uint8Array, nonce: Uint8Array, plaintext: Uint8Array, ad: Uint8Array): Uint8Array {
  return xchacha20poly1305(key, nonce, ad).encrypt(plaintext);
}

/** XAEAD open: the plaintext, or `null` if it does not authenticate. */
export function xaeadOpen(key: Uint8Array, nonce: Uint8Array, ciphertext: Uint8Array, ad: Uint8Array): Uint8Array | null {
  if (nonce.length !== XNONCE_SIZE || ciphertext.length < AEAD_TAG_SIZE) return null;
  try {
    return xchacha20poly1305(key, nonce, ad).decrypt(ciphertext);
  } catch {
    return null;
  }
}

/** TAI64 label of the Unix epoch plus the 10 s TAI-UTC offset that wireguard-go and the kernel use. */
const TAI64_BASE = 0x400000000000000an;
/** wireguard-go zeroes the low 24 bits of the nanoseconds so the timestamp leaks less timing. */
const TAI64N_WHITENER_MASK = 0xffffff;

/** TAI64N(): the 12-byte big-endian timestamp for a wall-clock time in milliseconds since the epoch (§5.4.2). */
export function tai64n(epochMs: number): Uint8Array {
  const seconds = Math.floor(epochMs / 1000);
  const nanos = Math.floor((epochMs - seconds * 1000) * 1e6) & ~TAI64N_WHITENER_MASK;
  const out = Buffer.alloc(TIMESTAMP_SIZE);
  out.writeBigUInt64BE(TAI64_BASE + BigInt(seconds), 0);
  out.writeUInt32BE(nanos >>> 0, 8);
  return new Uint8Array(out);
}

/** Byte-wise comparison of two TAI64N timestamps: true if `a` is strictly later than `b`. */
export function timestampAfter(a: Uint8Array, b: Uint8Array): boolean {
  return Buffer.compare(a, b) > 0;
}

/** A 32-byte key from base64 (the `wg` configuration form). @throws VectunError `ERR_WG_KEY`. */
export function keyFromBase64(text: string): Uint8Array {
  if (typeof text !== 'string' || !/^[A-Za-z0-9+/]{43}=$/.test(text)) throw new VectunError('ERR_WG_KEY', 'a key must be 44 characters of base64');
  return new Uint8Array(Buffer.from(text, 'base64'));
}

/** The base64 form of a 32-byte key. */
export function keyToBase64(key: Uint8Array): string {
  checkKeyLength(key, 'a key');
  return Buffer.from(key).toString('base64');
}

/** A 32-byte key from 64 hex digits (the UAPI form; upper case accepted). @throws VectunError `ERR_WG_KEY`. */
export function keyFromHex(text: string): Uint8Array {
  if (typeof text !== 'string' || !/^[0-9a-fA-F]{64}$/.test(text)) throw new VectunError('ERR_WG_KEY', 'a key must be 64 hex digits');
  return new Uint8Array(Buffer.from(text, 'hex'));
}

/** The lowercase hex form of a 32-byte key (as UAPI `get=1` prints it). */
export function keyToHex(key: Uint8Array): string {
  checkKeyLength(key, 'a key');
  return Buffer.from(key).toString('hex');
}
