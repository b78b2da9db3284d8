/**
 * MAC1, MAC2 and cookies (whitepaper §5.3, §5.4.4, §5.4.7), as wireguard-go's
 * CookieChecker (our side, as responder of handshake messages) and
 * CookieGenerator (per peer, for the handshake messages we send).
 *
 * - mac1 = MAC(HASH(LABEL_MAC1 ‖ S_pub receiver), msg[..mac1]) is always
 *   required; it proves the sender knows our public key.
 * - Under load, mac2 = MAC(cookie, msg[..mac2]) is also required, where
 *   cookie = MAC(secret, source endpoint bytes) and the secret changes every
 *   COOKIE_REFRESH_TIME. A message without a valid mac2 is answered with a
 *   cookie reply: XAEAD(HASH(LABEL_COOKIE ‖ S_pub), nonce, cookie, mac1).
 * - A received cookie is used for mac2 for COOKIE_REFRESH_TIME.
 *
 * The messages passed in are complete handshake messages (initiation or
 * response): mac1 and mac2 are their last 32 bytes.
 * @module
 */
import { COOKIE_REFRESH_TIME, LABEL_COOKIE, LABEL_MAC1, MAC_SIZE, XNONCE_SIZE } from './constants.js';
import { constantTimeEqual, hash, mac, secureRandomBytes, xaeadOpen, xaeadSeal, type RandomBytes } from './crypto.js';
import { parseCookieReply, serializeCookieReply, type CookieReplyMessage } from './messages.js';

const TEXT = new TextEncoder();
const MAC1_LABEL = TEXT.encode(LABEL_MAC1);
const COOKIE_LABEL = TEXT.encode(LABEL_COOKIE);
/** Smallest handshake message (a response, 92 bytes) would do; anything shorter cannot hold the two MACs. */
const MIN_MACCED_LENGTH = 2 * MAC_SIZE;

/** Options of the cookie checker and generator. */
export interface CookieOptions {
  /** Monotonic clock in ms; default `performance.now()`. */
  now?: () => number;
  /** Random source of the cookie secret and reply nonces; default the CSPRNG. */
  random?: RandomBytes;
}

/** The mac1 key for messages to the owner of `publicKey`. */
export function mac1Key(publicKey: Uint8Array): Uint8Array {
  return hash(MAC1_LABEL, publicKey);
}

/** The cookie-reply encryption key for messages to the owner of `publicKey`. */
export function cookieKey(publicKey: Uint8Array): Uint8Array {
  return hash(COOKIE_LABEL, publicKey);
}

/**
 * The bytes a cookie is bound to: the source address (4 or 16 bytes)
 * followed by the port, little-endian, as wireguard-go's endpoint
 * `DstToBytes` (netip.AddrPort.MarshalBinary).
 */
export function endpointBytes(address: Uint8Array, port: number): Uint8Array {
  const out = new Uint8Array(address.length + 2);
  out.set(address);
  out[address.length] = port & 0xff;
  out[address.length + 1] = (port >>> 8) & 0xff;
  return out;
}

const defaultNow = (): number => performance.now();

/** Our side: checks mac1/mac2 of incoming handshake messages and makes cookie replies. */
export class CookieChecker {
  private mac1Key: Uint8Array | null = null;
  private encryptionKey: Uint8Array | null = null;
  private secret: Uint8Array = new Uint8Array(32);
  private secretSetAt = -Infinity;
  private readonly now: () => number;
  private readonly random: RandomBytes;

  /** @param publicKey our static public key; `null`: no key yet (every check fails). */
  constructor(publicKey: Uint8Array | null, options: CookieOptions = {}) {
    this.now = options.now ?? defaultNow;
    this.random = options.random ?? secureRandomBytes;
    this.setPublicKey(publicKey);
  }

  /** Changes our public key (UAPI private_key); the cookie secret is renewed at next use. */
  setPublicKey(publicKey: Uint8Array | null): void {
    this.mac1Key = publicKey === null ? null : mac1Key(publicKey);
    this.encryptionKey = publicKey === null ? null : cookieKey(publicKey);
    this.secretSetAt = -Infinity;
  }

  /** True if mac1 of the handshake message is valid (constant-time compare). */
  checkMac1(msg: Uint8Array): boolean {
    if (this.mac1Key === null || msg.length < MIN_MACCED_LENGTH) return false;
    const at = msg.length - 2 * MAC_SIZE;
    return constantTimeEqual(mac(this.mac1Key, msg.subarray(0, at)), msg.subarray(at, at + MAC_SIZE));
  }

  /** True if mac2 is valid for the cookie of `source` (see {@link endpointBytes}) under the current secret. */
  checkMac2(msg: Uint8Array, source: Uint8Array): boolean {
    if (msg.length < MIN_MACCED_LENGTH || this.now() - this.secretSetAt > COOKIE_REFRESH_TIME) return false;
    const cookie = mac(this.secret, source);
    const at = msg.length - MAC_SIZE;
    return constantTimeEqual(mac(cookie, msg.subarray(0, at)), msg.subarray(at));
  }

  /**
   * The 64-byte cookie reply to a handshake message from `source`;
   * `receiverIndex` is the message's sender index. Renews the secret if it is
   * older than COOKIE_REFRESH_TIME. Returns `null` without a public key.
   */
  createReply(msg: Uint8Array, receiverIndex: number, source: Uint8Array): Uint8Array | null {
    if (this.encryptionKey === null || msg.length < MIN_MACCED_LENGTH) return null;
    const now = this.now();
    if (now - this.secretSetAt > COOKIE_REFRESH_TIME) {
      this.secret = Uint8Array.from(this.random(32));
      this.secretSetAt = now;
    }
    const cookie = mac(this.secret, source);
    const at = msg.length - 2 * MAC_SIZE;
    const nonce = Uint8Array.from(this.random(XNONCE_SIZE));
    const encryptedCookie = xaeadSeal(this.encryptionKey, nonce, cookie, msg.subarray(at, at + MAC_SIZE));
    return serializeCookieReply({ receiver: receiverIndex >>> 0, nonce, encryptedCookie });
  }
}

/** Per peer: adds mac1/mac2 to the handshake messages we send it and takes its cookie replies. */
export class CookieGenerator {
  private readonly mac1Key: Uint8Array;
  private readonly encryptionKey: Uint8Array;
  private cookie: Uint8Array = new Uint8Array(MAC_SIZE);
  private cookieSetAt = -Infinity;
  private lastMac1: Uint8Array | null = null;
  private readonly now: () => number;

  /** @param peerPublicKey the static public key of the peer we send to. */
  constructor(peerPublicKey: Uint8Array, options: CookieOptions = {}) {
    this.mac1Key = mac1Key(peerPublicKey);
    this.encryptionKey = cookieKey(peerPublicKey);
    this.now = options.now ?? defaultNow;
  }

  /** True while a received cookie is fresh enough to be used for mac2. */
  get hasCookie(): boolean {
    return this.now() - this.cookieSetAt <= COOKIE_REFRESH_TIME;
  }

  /** Writes mac1, and mac2 if a fresh cookie is held (else zeros), into the last 32 bytes of `msg`, in place. */
  addMacs(msg: Uint8Array): void {
    const at1 = msg.length - 2 * MAC_SIZE;
    const at2 = msg.length - MAC_SIZE;
    const mac1 = mac(this.mac1Key, msg.subarray(0, at1));
    msg.set(mac1, at1);
    this.lastMac1 = mac1;
    if (this.hasCookie) msg.set(mac(this.cookie, msg.subarray(0, at2)), at2);
    else msg.fill(0, at2);
  }

  /**
   * Takes a cookie reply to the last message we sent (its mac1 is the AEAD's
   * additional data). False if nothing was sent yet or it does not decrypt.
   * The caller found this peer by the reply's receiver index.
   */
  consumeReply(reply: Uint8Array | CookieReplyMessage): boolean {
    if (this.lastMac1 === null) return false;
    const r = reply instanceof Uint8Array ? parseCookieReply(reply) : reply;
    const cookie = xaeadOpen(this.encryptionKey, r.nonce, r.encryptedCookie, this.lastMac1);
    if (cookie === null) return false;
    this.cookie = cookie;
    this.cookieSetAt = this.now();
    return true;
  }
}
