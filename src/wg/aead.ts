/**
 * ChaCha20-Poly1305 for WireGuard transport data messages (whitepaper 5.4.6),
 * a batch per call.
 *
 * Two implementations with identical results: the addon's batch functions
 * (native/aead.c, OpenSSL's EVP API through the symbols the node binary
 * exports; one context setup per key, one call per batch) and a per-packet
 * `node:crypto` fallback for a node whose OpenSSL symbols cannot be resolved.
 * The fallback is also the reference the native path is cross-checked
 * against in the tests. docs/wg-crypto.md records why the data path is native
 * (per-packet `node:crypto` measured about 6x slower per 1420-byte packet).
 *
 * Layout of a transport message: type 4 | 3 zero bytes | receiver index
 * (LE32) | counter (LE64) | ciphertext of the zero-padded plaintext | 16-byte
 * tag; nonce = 4 zero bytes || LE64 counter; no associated data.
 * @module
 */
import * as crypto from 'node:crypto';
import { VectunError } from '../errors.js';
import { loadBinding } from '../device/native.js';

/** Bytes before the ciphertext: type, reserved, receiver index, counter. */
export const TRANSPORT_HEADER_LENGTH = 16;
/** Poly1305 tag bytes after the ciphertext. */
export const TRANSPORT_TAG_LENGTH = 16;
/** Header plus tag: what a transport message adds to its padded plaintext. */
export const TRANSPORT_OVERHEAD = TRANSPORT_HEADER_LENGTH + TRANSPORT_TAG_LENGTH;
/** Message type of transport data (whitepaper 5.4.6). */
export const MESSAGE_TRANSPORT_TYPE = 4;
/** Counters from here on are not exact JS numbers; opening reports them as {@link AEAD_COUNTER_RANGE}. */
export const MAX_SAFE_COUNTER = 2 ** 53;

// Per-message results of open (negative errno values).
/** The message is shorter than header + tag, or its plaintext is larger than the stride. */
export const AEAD_BAD_LENGTH = -22; // EINVAL
/** The key was destroyed. */
export const AEAD_KEY_DESTROYED = -9; // EBADF
/** No key was given for the message. */
export const AEAD_NO_KEY = -126; // ENOKEY
/** The counter is 2^53 or more. */
export const AEAD_COUNTER_RANGE = -34; // ERANGE
/** The tag did not verify (forged, corrupted, or the wrong key). */
export const AEAD_BAD_TAG = -74; // EBADMSG
/** Seal: the message would not fit in the stride. */
export const AEAD_TOO_BIG = -90; // EMSGSIZE

/** Opaque handle of a native key (an external with a finalizer). */
export type NativeAeadKey = { readonly __aeadKey: unique symbol };

/** The addon's AEAD functions (native/aead.c); results are `>= 0` or `-errno`. */
export interface AeadBinding {
  /** 1 when the OpenSSL functions resolved in this process. */
  aeadAvailable(): number;
  /** Both contexts keyed once; -ENOSYS, -EINVAL (not 32 bytes), -ENOMEM. */
  aeadKey(key: Uint8Array): NativeAeadKey | number;
  /** Frees the contexts (and the key schedule) now. */
  aeadKeyDestroy(key: NativeAeadKey): number;
  /** See {@link TransportCipher.seal}. */
  aeadSeal(key: NativeAeadKey, receiverIndex: number, counter: number, packets: readonly Uint8Array[], count: number,
    mtu: number, out: Uint8Array, stride: number, lengths: Int32Array): number;
  /** See {@link TransportCipher.open}; `keys[i]` anything but a key skips message i (-ENOKEY). */
  aeadOpen(keys: readonly unknown[], messages: readonly Uint8Array[], count: number, out: Uint8Array, stride: number,
    lengths: Int32Array, counters: Float64Array): number;
}

/** A key of one direction of a keypair. Destroy it when the keypair expires. */
export interface TransportKey {
  /** Whether {@link TransportKey.destroy} ran. */
  readonly destroyed: boolean;
  /** Erases the key now (native contexts freed, fallback bytes zeroed). Idempotent. */
  destroy(): void;
}

/** Batch sealing and opening of transport messages. */
export interface TransportCipher {
  /** Whether this is the addon's batch path (else per-packet node:crypto). */
  readonly native: boolean;
  /** A key for {@link seal} or {@link open}; the caller's bytes are not kept (copy for the fallback). */
  key(bytes: Uint8Array): TransportKey;
  /**
   * Seals `packets[0..count)` as transport messages into `out[i * stride]`:
   * header (type 4, `receiverIndex`, counter `counter + i`), the plaintext
   * zero-padded to a multiple of 16 but not beyond `max(mtu, its length)`,
   * tag. `lengths[i]` = message bytes, or `AEAD_TOO_BIG` (-EMSGSIZE).
   * @returns `count`, or -errno (-EBADF: key destroyed, -EINVAL: sizes).
   */
  seal(key: TransportKey, receiverIndex: number, counter: number, packets: readonly Uint8Array[], count: number,
    mtu: number, out: Uint8Array, stride: number, lengths: Int32Array): number;
  /**
   * Opens message i of `messages[0..count)` with `keys[i]` into
   * `out[i * stride]` (an empty key slot: `AEAD_NO_KEY`, -ENOKEY). `lengths[i]` =
   * plaintext bytes including padding, or one of the `AEAD_*` codes;
   * `counters[i]` = its counter (when the length was valid). Only `out`,
   * `lengths` and `counters` are written: a failed message changes nothing
   * else, and its output slot holds no unauthenticated plaintext.
   * @returns how many messages opened, or -EINVAL for bad sizes.
   */
  open(keys: readonly (TransportKey | null | undefined)[], messages: readonly Uint8Array[], count: number,
    out: Uint8Array, stride: number, lengths: Int32Array, counters: Float64Array): number;
}

/** Bytes a plaintext of `length` occupies once padded (whitepaper 5.4.6), for a device MTU. */
export function paddedLength(length: number, mtu: number): number {
  const padded = (length + 15) & ~15;
  return padded <= mtu ? padded : Math.max(length, mtu);
}

function checkSizes(count: number, stride: number, out: Uint8Array, lengths: { length: number }, minStride: number): boolean {
  return Number.isInteger(count) && count >= 0 && stride >= minStride && count <= lengths.length && count * stride <= out.length;
}

// ---------------------------------------------------------------- native

class NativeKey implements TransportKey {
  handle: NativeAeadKey | null;
  readonly #binding: AeadBinding;
  constructor(binding: AeadBinding, handle: NativeAeadKey) {
    this.#binding = binding;
    this.handle = handle;
  }
  get destroyed(): boolean {
    return this.handle === null;
  }
  destroy(): void {
    if (this.handle === null) return;
    this.#binding.aeadKeyDestroy(this.handle);
    this.handle = null;
  }
}

class NativeCipher implements TransportCipher {
  readonly native = true;
  readonly #binding: AeadBinding;
  /** Key handles of the current open call, reused (no allocation per batch). */
  #handles: unknown[] = [];
  constructor(binding: AeadBinding) {
    this.#binding = binding;
  }

  key(bytes: Uint8Array): TransportKey {
    const h = this.#binding.aeadKey(bytes);
    if (typeof h === 'number') {
      throw new VectunError('ERR_WG_CRYPTO', `cannot set up a ChaCha20-Poly1305 key (errno ${-h})`, { errno: -h, syscall: 'EVP_CipherInit_ex' });
    }
    return new NativeKey(this.#binding, h);
  }

  seal(key: TransportKey, receiverIndex: number, counter: number, packets: readonly Uint8Array[], count: number,
    mtu: number, out: Uint8Array, stride: number, lengths: Int32Array): number {
    const h = (key as NativeKey).handle;
    if (h === null) return AEAD_KEY_DESTROYED;
    return this.#binding.aeadSeal(h, receiverIndex >>> 0, counter, packets, count, mtu, out, stride, lengths);
  }

  open(keys: readonly (TransportKey | null | undefined)[], messages: readonly Uint8Array[], count: number,
    out: Uint8Array, stride: number, lengths: Int32Array, counters: Float64Array): number {
    const handles = this.#handles;
    for (let i = 0; i < count; i++) {
      const k = keys[i];
      // A destroyed key reaches the addon as "no key"; report it as destroyed below.
      handles[i] = k instanceof NativeKey ? k.handle : null;
    }
    const r = this.#binding.aeadOpen(handles, messages, count, out, stride, lengths, counters);
    if (r < 0) return r;
    for (let i = 0; i < count; i++) {
      const k = keys[i];
      if (lengths[i] === AEAD_NO_KEY && k instanceof NativeKey && k.handle === null) lengths[i] = AEAD_KEY_DESTROYED;
      handles[i] = null;
    }
    return r;
  }
}

// ---------------------------------------------------------------- node:crypto fallback

class FallbackKey implements TransportKey {
  bytes: Buffer | null;
  constructor(bytes: Uint8Array) {
    this.bytes = Buffer.from(bytes);
  }
  get destroyed(): boolean {
    return this.bytes === null;
  }
  destroy(): void {
    this.bytes?.fill(0);
    this.bytes = null;
  }
}

const ZERO_PAD = new Uint8Array(16);

class NodeCryptoCipher implements TransportCipher {
  readonly native = false;
  readonly #nonce = Buffer.alloc(12);

  key(bytes: Uint8Array): TransportKey {
    if (!(bytes instanceof Uint8Array) || bytes.length !== 32) {
      throw new VectunError('ERR_WG_CRYPTO', 'a ChaCha20-Poly1305 key is 32 bytes', { errno: 22 });
    }
    return new FallbackKey(bytes);
  }

  seal(key: TransportKey, receiverIndex: number, counter: number, packets: readonly Uint8Array[], count: number,
    mtu: number, out: Uint8Array, stride: number, lengths: Int32Array): number {
    const k = (key as FallbackKey).bytes;
    if (k === null) return AEAD_KEY_DESTROYED;
    if (!checkSizes(count, stride, out, lengths, TRANSPORT_OVERHEAD) || !Number.isInteger(counter) || counter < 0 ||
      counter > MAX_SAFE_COUNTER - count) return AEAD_BAD_LENGTH;
    const view = new DataView(out.buffer, out.byteOffset, out.byteLength);
    for (let i = 0; i < count; i++) {
      const p = packets[i]!;
      const padded = paddedLength(p.length, mtu);
      const total = TRANSPORT_OVERHEAD + padded;
      if (total > stride) {
        lengths[i] = AEAD_TOO_BIG;
        continue;
      }
      const at = i * stride;
      const n = counter + i;
      view.setUint32(at, MESSAGE_TRANSPORT_TYPE, true);
      view.setUint32(at + 4, receiverIndex >>> 0, true);
      view.setUint32(at + 8, n % 2 ** 32, true);
      view.setUint32(at + 12, Math.floor(n / 2 ** 32), true);
      this.#setNonce(n);
      const c = crypto.createCipheriv('chacha20-poly1305', k, this.#nonce, { authTagLength: TRANSPORT_TAG_LENGTH });
      let w = at + TRANSPORT_HEADER_LENGTH;
      out.set(c.update(p), w);
      w += p.length;
      if (padded > p.length) {
        out.set(c.update(ZERO_PAD.subarray(0, padded - p.length)), w);
        w += padded - p.length;
      }
      c.final();
      out.set(c.getAuthTag(), w);
      lengths[i] = total;
    }
    return count;
  }

  open(keys: readonly (TransportKey | null | undefined)[], messages: readonly Uint8Array[], count: number,
    out: Uint8Array, stride: number, lengths: Int32Array, counters: Float64Array): number {
    if (!checkSizes(count, stride, out, lengths, 0) || count > counters.length) return AEAD_BAD_LENGTH;
    let opened = 0;
    for (let i = 0; i < count; i++) {
      const key = keys[i];
      if (!(key instanceof FallbackKey)) {
        lengths[i] = AEAD_NO_KEY;
        continue;
      }
      const m = messages[i]!;
      counters[i] = -1;
      // Same order of checks as the native wrapper (a destroyed key first).
      if (key.bytes === null) {
        lengths[i] = AEAD_KEY_DESTROYED;
        continue;
      }
      if (m.length < TRANSPORT_OVERHEAD || m.length - TRANSPORT_OVERHEAD > stride) {
        lengths[i] = AEAD_BAD_LENGTH;
        continue;
      }
      const view = new DataView(m.buffer, m.byteOffset, m.byteLength);
      const lo = view.getUint32(8, true);
      const hi = view.getUint32(12, true);
      if (hi >= 2 ** 21) {
        lengths[i] = AEAD_COUNTER_RANGE;
        continue;
      }
      const n = hi * 2 ** 32 + lo;
      counters[i] = n;
      this.#setNonce(n);
      const clen = m.length - TRANSPORT_OVERHEAD;
      const d = crypto.createDecipheriv('chacha20-poly1305', key.bytes, this.#nonce, { authTagLength: TRANSPORT_TAG_LENGTH });
      d.setAuthTag(m.subarray(m.length - TRANSPORT_TAG_LENGTH));
      const plain = d.update(m.subarray(TRANSPORT_HEADER_LENGTH, TRANSPORT_HEADER_LENGTH + clen));
      try {
        d.final(); // node:crypto compares the tag in constant time (OpenSSL)
      } catch {
        lengths[i] = AEAD_BAD_TAG;
        continue;
      }
      out.set(plain, i * stride);
      lengths[i] = clen;
      opened++;
    }
    return opened;
  }

  #setNonce(n: number): void {
    this.#nonce.writeUInt32LE(n % 2 ** 32, 4);
    this.#nonce.writeUInt32LE(Math.floor(n / 2 ** 32), 8);
  }
}

/** Options of {@link createTransportCipher}. */
export interface TransportCipherOptions {
  /** `'native'`: the addon or an error; `'node'`: node:crypto per packet; `'auto'` (default): native when it loads. */
  implementation?: 'auto' | 'native' | 'node';
  /** @internal A replacement for the addon (tests). */
  binding?: Partial<AeadBinding>;
}

function isAeadBinding(b: Partial<AeadBinding> | undefined): b is AeadBinding {
  return b !== undefined && typeof b.aeadAvailable === 'function' && typeof b.aeadKey === 'function' &&
    typeof b.aeadSeal === 'function' && typeof b.aeadOpen === 'function' && typeof b.aeadKeyDestroy === 'function';
}

/**
 * The transport cipher: the addon's batch path when its OpenSSL functions
 * resolve, else per-packet node:crypto (same results).
 * @throws VectunError `ERR_WG_CRYPTO` when `'native'` is demanded but unavailable.
 */
export function createTransportCipher(options: TransportCipherOptions = {}): TransportCipher {
  const want = options.implementation ?? 'auto';
  if (want === 'node') return new NodeCryptoCipher();
  let binding: Partial<AeadBinding> | undefined = options.binding;
  if (binding === undefined) {
    try {
      binding = loadBinding() as unknown as Partial<AeadBinding>;
    } catch (err) {
      if (want === 'native') throw new VectunError('ERR_WG_CRYPTO', 'the native addon is not available', { cause: err });
      return new NodeCryptoCipher();
    }
  }
  if (isAeadBinding(binding) && binding.aeadAvailable() === 1) return new NativeCipher(binding);
  if (want === 'native') {
    throw new VectunError('ERR_WG_CRYPTO', 'the addon cannot resolve OpenSSL\'s EVP_chacha20_poly1305 in this node binary');
  }
  return new NodeCryptoCipher();
}
