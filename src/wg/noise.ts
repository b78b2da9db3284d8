/**
 * The Noise_IKpsk2 handshake of WireGuard (whitepaper §5.4.1-§5.4.5): the
 * device's static identity and the per-peer handshake state, on both sides.
 *
 * Initiator: {@link Handshake.createInitiation} → (peer) → {@link Handshake.consumeResponse}
 * → {@link Handshake.deriveKeypair}. Responder: {@link consumeInitiation} (finds the
 * peer's handshake by the decrypted static key, rejects replayed TAI64N
 * timestamps and floods) → {@link Handshake.createResponse} → {@link Handshake.deriveKeypair}.
 *
 * Messages leave here with mac1/mac2 zero: the cookie module adds them
 * (src/wg/cookie.ts), and checks them before a message reaches a consumer.
 * Indices are chosen by the caller (the index table of src/wg/keypairs.ts).
 * Randomness (ephemeral keys) and both clocks are injectable, so a handshake
 * between two states is reproducible byte for byte.
 *
 * A consumer either completes or throws a `VectunError` and leaves the
 * handshake state as it was (the whitepaper's "drop the message").
 * @module
 */
import type { KeyObject } from 'node:crypto';
import { VectunError } from '../errors.js';
import { CONSTRUCTION, HANDSHAKE_INITIATION_RATE, HASH_SIZE, IDENTIFIER, KEY_SIZE, TIMESTAMP_SIZE } from './constants.js';
import {
  aeadOpen,
  aeadSeal,
  dh,
  generatePrivateKey,
  hash,
  kdf1,
  kdf2,
  kdf3,
  publicKeyOf,
  secureRandomBytes,
  tai64n,
  timestampAfter,
  x25519PrivateKeyObject,
  type RandomBytes,
} from './crypto.js';
import {
  parseInitiation,
  parseResponse,
  serializeInitiation,
  serializeResponse,
  type InitiationMessage,
  type ResponseMessage,
} from './messages.js';

/** The clocks a handshake reads, in milliseconds. */
export interface NoiseClock {
  /** Monotonic time (flood protection, keypair age): e.g. `performance.now()`. */
  now(): number;
  /** Wall-clock time since the Unix epoch (the TAI64N timestamp): e.g. `Date.now()`. */
  wallNow(): number;
}

/** The system clocks. */
export const systemNoiseClock: NoiseClock = { now: () => performance.now(), wallNow: () => Date.now() };

/** Options of a {@link Handshake}. */
export interface HandshakeOptions {
  /** Source of ephemeral private keys (32 bytes a call); default the CSPRNG. */
  random?: RandomBytes;
  /** Default {@link systemNoiseClock}. */
  clock?: NoiseClock;
}

const EMPTY = new Uint8Array(0);
const ZERO_KEY = new Uint8Array(KEY_SIZE);
const TEXT = new TextEncoder();

/** C_0 = HASH(CONSTRUCTION) (§5.4). */
export const INITIAL_CHAIN_KEY: Uint8Array = hash(TEXT.encode(CONSTRUCTION));
/** H_0 = HASH(C_0 ‖ IDENTIFIER) (§5.4). */
export const INITIAL_HASH: Uint8Array = hash(INITIAL_CHAIN_KEY, TEXT.encode(IDENTIFIER));

/** The device's static key pair, with the parts of the transcript that depend only on it precomputed. */
export class StaticIdentity {
  /** The 32-byte private key. */
  readonly privateKey: Uint8Array;
  /** The 32-byte public key. */
  readonly publicKey: Uint8Array;
  /** The private key as a node:crypto KeyObject (made once). */
  readonly privateKeyObject: KeyObject;
  /** HASH(H_0 ‖ S_pub): a responder's transcript hash before the initiation (§5.4.2). */
  readonly responderHash: Uint8Array;

  /** @throws VectunError `ERR_WG_KEY` for a key that is not 32 bytes. */
  constructor(privateKey: Uint8Array) {
    this.privateKeyObject = x25519PrivateKeyObject(privateKey);
    this.privateKey = Uint8Array.from(privateKey);
    this.publicKey = publicKeyOf(this.privateKeyObject);
    this.responderHash = hash(INITIAL_HASH, this.publicKey);
  }

  /** A new identity with a random private key. */
  static generate(random: RandomBytes = secureRandomBytes): StaticIdentity {
    return new StaticIdentity(generatePrivateKey(random));
  }
}

/** Where a handshake stands (wireguard-go's handshakeState). */
export type HandshakeState = 'zeroed' | 'initiation-created' | 'initiation-consumed' | 'response-created' | 'response-consumed';

/** The session keys a completed handshake yields (§5.4.5), before the keypair rotation. */
export interface DerivedKeypair {
  /** T_send: the ChaCha20-Poly1305 key for messages to the peer. */
  sendKey: Uint8Array;
  /** T_recv: the key for messages from the peer. */
  receiveKey: Uint8Array;
  /** Our index: the receiver field of transport messages from the peer. */
  localIndex: number;
  /** The peer's index: the receiver field of our transport messages. */
  remoteIndex: number;
  /** True on the side that sent the initiation (only it rekeys on age, §6.2). */
  isInitiator: boolean;
  /** Monotonic time of derivation (ms), for REJECT_AFTER_TIME / REKEY_AFTER_TIME. */
  createdAt: number;
}

function handshakeError(code: 'ERR_WG_DECRYPT' | 'ERR_WG_HANDSHAKE_STATE' | 'ERR_WG_UNKNOWN_PEER' | 'ERR_WG_REPLAY' | 'ERR_WG_FLOOD' | 'ERR_WG_KEY', message: string): VectunError {
  return new VectunError(code, message);
}

/**
 * One peer's handshake state: its static public key, the optional preshared
 * key, the precomputed static-static DH, the replay/flood memory of the last
 * accepted initiation and the transcript of a handshake in progress.
 */
export class Handshake {
  /** The peer's static public key. */
  readonly remoteStatic: Uint8Array;
  /** Current state. */
  state: HandshakeState = 'zeroed';
  /** Our index of the handshake in progress (0 when zeroed). */
  localIndex = 0;
  /** The peer's index of the handshake in progress. */
  remoteIndex = 0;
  /** Greatest TAI64N timestamp accepted from this peer (zeros: none). */
  lastTimestamp: Uint8Array = new Uint8Array(TIMESTAMP_SIZE);
  /** Monotonic time of the last accepted initiation (ms); -Infinity: none. */
  lastInitiationConsumption = -Infinity;

  private identity: StaticIdentity;
  private presharedKey: Uint8Array = ZERO_KEY;
  /** DH(S_priv, S_pub peer), or null if it is all zeros (wireguard-go refuses such a peer's handshakes). */
  private precomputedStaticStatic: Uint8Array | null = null;
  private chainKey: Uint8Array = new Uint8Array(HASH_SIZE);
  private transcript: Uint8Array = new Uint8Array(HASH_SIZE);
  private localEphemeral: KeyObject | null = null;
  private remoteEphemeral: Uint8Array = new Uint8Array(KEY_SIZE);
  private readonly random: RandomBytes;
  private readonly clock: NoiseClock;

  /**
   * @param presharedKey 32 bytes, or `null` for none (zeros, §5.4.4).
   * @throws VectunError `ERR_WG_KEY` for keys that are not 32 bytes.
   */
  constructor(identity: StaticIdentity, remoteStatic: Uint8Array, presharedKey: Uint8Array | null = null, options: HandshakeOptions = {}) {
    if (!(remoteStatic instanceof Uint8Array) || remoteStatic.length !== KEY_SIZE) throw handshakeError('ERR_WG_KEY', 'a peer public key must be 32 bytes');
    this.remoteStatic = Uint8Array.from(remoteStatic);
    this.identity = identity;
    this.random = options.random ?? secureRandomBytes;
    this.clock = options.clock ?? systemNoiseClock;
    this.setPresharedKey(presharedKey);
    this.setIdentity(identity);
  }

  /** The identity this handshake uses. */
  get staticIdentity(): StaticIdentity {
    return this.identity;
  }

  /** The clock this handshake reads. */
  get noiseClock(): NoiseClock {
    return this.clock;
  }

  /** Changes the local identity (UAPI private_key): recomputes the static-static DH and clears a handshake in progress. */
  setIdentity(identity: StaticIdentity): void {
    this.identity = identity;
    try {
      this.precomputedStaticStatic = dh(identity.privateKeyObject, this.remoteStatic);
    } catch {
      this.precomputedStaticStatic = null;
    }
    this.clear();
  }

  /** Sets or clears (`null`) the preshared key. @throws VectunError `ERR_WG_KEY` if not 32 bytes. */
  setPresharedKey(presharedKey: Uint8Array | null): void {
    if (presharedKey === null) {
      this.presharedKey = ZERO_KEY;
      return;
    }
    if (!(presharedKey instanceof Uint8Array) || presharedKey.length !== KEY_SIZE) throw handshakeError('ERR_WG_KEY', 'a preshared key must be 32 bytes');
    this.presharedKey = Uint8Array.from(presharedKey);
  }

  /** Forgets the handshake in progress (state, transcript, ephemeral key); keeps the replay/flood memory. */
  clear(): void {
    this.chainKey.fill(0);
    this.transcript.fill(0);
    this.remoteEphemeral.fill(0);
    this.localEphemeral = null;
    this.localIndex = 0;
    this.state = 'zeroed';
  }

  /**
   * Starts a handshake as initiator (§5.4.2): a 148-byte initiation with
   * mac1/mac2 zero. `senderIndex` is our new index: the caller registers it
   * in the index table and frees the previous {@link localIndex} (as
   * wireguard-go does), then adds the MACs (CookieGenerator.addMacs).
   * @throws VectunError `ERR_WG_KEY` if the peer's key gives an all-zero DH.
   */
  createInitiation(senderIndex: number): Uint8Array {
    if (this.precomputedStaticStatic === null) throw handshakeError('ERR_WG_KEY', 'the peer public key gives an all-zero static-static DH');
    let h = hash(INITIAL_HASH, this.remoteStatic);
    const ephemeralPrivate = x25519PrivateKeyObject(generatePrivateKey(this.random));
    const ephemeral = publicKeyOf(ephemeralPrivate);
    let ck = kdf1(INITIAL_CHAIN_KEY, ephemeral);
    h = hash(h, ephemeral);
    let key: Uint8Array;
    [ck, key] = kdf2(ck, dh(ephemeralPrivate, this.remoteStatic));
    const encryptedStatic = aeadSeal(key, 0, this.identity.publicKey, h);
    h = hash(h, encryptedStatic);
    [ck, key] = kdf2(ck, this.precomputedStaticStatic);
    const encryptedTimestamp = aeadSeal(key, 0, tai64n(this.clock.wallNow()), h);
    h = hash(h, encryptedTimestamp);
    key.fill(0);

    this.chainKey = ck;
    this.transcript = h;
    this.localEphemeral = ephemeralPrivate;
    this.localIndex = senderIndex >>> 0;
    this.state = 'initiation-created';
    const zeroMac = new Uint8Array(16);
    return serializeInitiation({ sender: this.localIndex, ephemeral, encryptedStatic, encryptedTimestamp, mac1: zeroMac, mac2: zeroMac });
  }

  /**
   * Consumes the peer's response to our initiation (§5.4.3). The caller
   * found this handshake by the response's receiver index and checked mac1.
   * @throws VectunError `ERR_WG_HANDSHAKE_STATE` (no initiation outstanding or
   * another index), `ERR_WG_KEY` (low-order ephemeral), `ERR_WG_DECRYPT`, or
   * a message error; the state is then unchanged.
   */
  consumeResponse(message: Uint8Array | ResponseMessage): void {
    const msg = message instanceof Uint8Array ? parseResponse(message) : message;
    if (this.state !== 'initiation-created' || this.localEphemeral === null) throw handshakeError('ERR_WG_HANDSHAKE_STATE', `a response needs an initiation outstanding (state ${this.state})`);
    if (msg.receiver !== this.localIndex) throw handshakeError('ERR_WG_HANDSHAKE_STATE', 'the response answers another index');
    let h = hash(this.transcript, msg.ephemeral);
    let ck = kdf1(this.chainKey, msg.ephemeral);
    ck = kdf1(ck, dh(this.localEphemeral, msg.ephemeral));
    ck = kdf1(ck, dh(this.identity.privateKeyObject, msg.ephemeral));
    const [ck2, tau, key] = kdf3(ck, this.presharedKey);
    h = hash(h, tau);
    const opened = aeadOpen(key, 0, msg.encryptedNothing, h);
    key.fill(0);
    if (opened === null) throw handshakeError('ERR_WG_DECRYPT', 'the response does not authenticate');
    h = hash(h, msg.encryptedNothing);
    this.chainKey = ck2;
    this.transcript = h;
    this.remoteIndex = msg.sender;
    this.state = 'response-consumed';
  }

  /**
   * Answers a consumed initiation (§5.4.3): a 92-byte response with mac1/mac2
   * zero. `senderIndex` is our new index.
   * @throws VectunError `ERR_WG_HANDSHAKE_STATE` unless an initiation was just consumed, `ERR_WG_KEY`.
   */
  createResponse(senderIndex: number): Uint8Array {
    if (this.state !== 'initiation-consumed') throw handshakeError('ERR_WG_HANDSHAKE_STATE', `a response needs a consumed initiation (state ${this.state})`);
    const ephemeralPrivate = x25519PrivateKeyObject(generatePrivateKey(this.random));
    const ephemeral = publicKeyOf(ephemeralPrivate);
    let h = hash(this.transcript, ephemeral);
    let ck = kdf1(this.chainKey, ephemeral);
    ck = kdf1(ck, dh(ephemeralPrivate, this.remoteEphemeral));
    ck = kdf1(ck, dh(ephemeralPrivate, this.remoteStatic));
    const [ck2, tau, key] = kdf3(ck, this.presharedKey);
    h = hash(h, tau);
    const encryptedNothing = aeadSeal(key, 0, EMPTY, h);
    h = hash(h, encryptedNothing);
    key.fill(0);
    this.chainKey = ck2;
    this.transcript = h;
    this.localEphemeral = ephemeralPrivate;
    this.localIndex = senderIndex >>> 0;
    this.state = 'response-created';
    const zeroMac = new Uint8Array(16);
    return serializeResponse({ sender: this.localIndex, receiver: this.remoteIndex, ephemeral, encryptedNothing, mac1: zeroMac, mac2: zeroMac });
  }

  /**
   * Derives the transport keys (§5.4.5) after a response was consumed
   * (initiator) or created (responder), and zeroes the handshake.
   * @throws VectunError `ERR_WG_HANDSHAKE_STATE` in any other state.
   */
  deriveKeypair(): DerivedKeypair {
    let isInitiator: boolean;
    if (this.state === 'response-consumed') isInitiator = true;
    else if (this.state === 'response-created') isInitiator = false;
    else throw handshakeError('ERR_WG_HANDSHAKE_STATE', `no keys to derive in state ${this.state}`);
    const [first, second] = kdf2(this.chainKey, EMPTY);
    const keys: DerivedKeypair = {
      sendKey: isInitiator ? first : second,
      receiveKey: isInitiator ? second : first,
      localIndex: this.localIndex,
      remoteIndex: this.remoteIndex,
      isInitiator,
      createdAt: this.clock.now(),
    };
    this.clear();
    return keys;
  }

  /** @internal Applies a verified initiation (used by {@link consumeInitiation}). */
  acceptInitiation(chainKey: Uint8Array, transcript: Uint8Array, msg: InitiationMessage, timestamp: Uint8Array, now: number): void {
    this.chainKey = chainKey;
    this.transcript = transcript;
    this.remoteIndex = msg.sender;
    this.remoteEphemeral = Uint8Array.from(msg.ephemeral);
    this.localEphemeral = null;
    if (timestampAfter(timestamp, this.lastTimestamp)) this.lastTimestamp = timestamp;
    if (now > this.lastInitiationConsumption) this.lastInitiationConsumption = now;
    this.state = 'initiation-consumed';
  }

  /** @internal The static-static DH for {@link consumeInitiation}. */
  staticStatic(): Uint8Array | null {
    return this.precomputedStaticStatic;
  }
}

/** Anything that carries a peer's {@link Handshake} (the device's peer object). */
export interface HasHandshake {
  /** The peer's handshake state. */
  readonly handshake: Handshake;
}

/**
 * Consumes a handshake initiation as responder (§5.4.2): decrypts the
 * initiator's static key, finds its peer with `lookup` (return `undefined`
 * for unknown or stopped peers), decrypts the timestamp, rejects a replay
 * (timestamp not newer than the last accepted) and a flood (less than
 * HANDSHAKE_INITIATION_RATE after the last accepted), as wireguard-go does,
 * and moves the peer's handshake to `initiation-consumed`.
 * The caller checked mac1 (and mac2 under load) before.
 * @returns what `lookup` returned for the initiator.
 * @throws VectunError `ERR_WG_MESSAGE_*`, `ERR_WG_KEY`, `ERR_WG_DECRYPT`,
 * `ERR_WG_UNKNOWN_PEER`, `ERR_WG_REPLAY`, `ERR_WG_FLOOD`; no state changes then.
 */
export function consumeInitiation<P extends HasHandshake>(identity: StaticIdentity, message: Uint8Array | InitiationMessage, lookup: (staticPublicKey: Uint8Array) => P | undefined): P {
  const msg = message instanceof Uint8Array ? parseInitiation(message) : message;
  let h = hash(identity.responderHash, msg.ephemeral);
  let ck = kdf1(INITIAL_CHAIN_KEY, msg.ephemeral);
  let key: Uint8Array;
  [ck, key] = kdf2(ck, dh(identity.privateKeyObject, msg.ephemeral));
  const peerStatic = aeadOpen(key, 0, msg.encryptedStatic, h);
  if (peerStatic === null) throw handshakeError('ERR_WG_DECRYPT', 'the initiation static key does not authenticate');
  h = hash(h, msg.encryptedStatic);
  const peer = lookup(peerStatic);
  if (peer === undefined) throw handshakeError('ERR_WG_UNKNOWN_PEER', 'the initiation comes from no configured peer');
  const handshake = peer.handshake;
  const ss = handshake.staticStatic();
  if (handshake.staticIdentity !== identity) throw handshakeError('ERR_WG_HANDSHAKE_STATE', "the peer's handshake belongs to another identity (call setIdentity)");
  if (ss === null) throw handshakeError('ERR_WG_KEY', 'the peer public key gives an all-zero static-static DH');
  [ck, key] = kdf2(ck, ss);
  const timestamp = aeadOpen(key, 0, msg.encryptedTimestamp, h);
  key.fill(0);
  if (timestamp === null) throw handshakeError('ERR_WG_DECRYPT', 'the initiation timestamp does not authenticate');
  h = hash(h, msg.encryptedTimestamp);
  if (!timestampAfter(timestamp, handshake.lastTimestamp)) throw handshakeError('ERR_WG_REPLAY', 'the initiation timestamp is not newer than the last accepted one');
  const now = handshake.noiseClock.now();
  if (now - handshake.lastInitiationConsumption <= HANDSHAKE_INITIATION_RATE) throw handshakeError('ERR_WG_FLOOD', 'initiations from this peer come too fast');
  handshake.acceptInitiation(ck, h, msg, timestamp, now);
  return peer;
}
