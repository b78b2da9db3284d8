/**
 * A deterministic WireGuard handshake between two of our own states, from
 * fixed static keys, ephemerals, indices and clocks: the known-answer test
 * (test/wg/noise.test.ts, fixture test/wg/fixtures/handshake-kat.json) and
 * the wireguard-go cross-check (test/wg/go-crosscheck.test.ts) both use it.
 */
import { aeadSeal, hash } from '../../src/wg/crypto.js';
import { CookieGenerator } from '../../src/wg/cookie.js';
import { Handshake, StaticIdentity, consumeInitiation, type DerivedKeypair, type NoiseClock } from '../../src/wg/noise.js';
import { writeTransportHeader } from '../../src/wg/messages.js';
import { MESSAGE_TRANSPORT_HEADER_SIZE } from '../../src/wg/constants.js';

const TEXT = new TextEncoder();

/** 32 bytes derived from a label (HASH(label)): fixed, reproducible key material. */
export function fixedBytes(label: string): Uint8Array {
  return hash(TEXT.encode(label));
}

/** A random source that hands out the given chunks in order (and fails when they run out). */
export function scriptedRandom(chunks: Uint8Array[]): (n: number) => Uint8Array {
  const queue = [...chunks];
  return (n) => {
    const c = queue.shift();
    if (c === undefined || c.length !== n) throw new Error(`scripted random: wanted ${n} bytes, have ${c?.length ?? 'none'}`);
    return c;
  };
}

/** A settable clock pair. */
export class FakeClock implements NoiseClock {
  constructor(
    public mono = 1_000_000,
    public wall = Date.UTC(2026, 0, 1, 12, 0, 0),
  ) {}
  now(): number {
    return this.mono;
  }
  wallNow(): number {
    return this.wall;
  }
}

/** The fixed inputs of the KAT. */
export const KAT_INPUT = {
  initiatorPrivate: fixedBytes('vectun kat initiator static'),
  responderPrivate: fixedBytes('vectun kat responder static'),
  initiatorEphemeral: fixedBytes('vectun kat initiator ephemeral'),
  responderEphemeral: fixedBytes('vectun kat responder ephemeral'),
  presharedKey: fixedBytes('vectun kat preshared key'),
  initiatorIndex: 0x11223344,
  responderIndex: 0x55667788,
  /** 2026-01-01T12:00:00.5Z: the nanoseconds are whitened to a multiple of 2^24. */
  wallMs: Date.UTC(2026, 0, 1, 12, 0, 0) + 500,
  plaintext: TEXT.encode('vectun kat transport payload 16'),
} as const;

/** What the KAT produces. */
export interface KatResult {
  initiatorPublic: Uint8Array;
  responderPublic: Uint8Array;
  initiation: Uint8Array;
  response: Uint8Array;
  initiatorKeys: DerivedKeypair;
  responderKeys: DerivedKeypair;
  /** Transport message initiator → responder, counter 0, {@link KAT_INPUT}.plaintext. */
  transport: Uint8Array;
}

/** Builds a transport message: header, then AEAD(key, counter, plaintext, empty). */
export function sealTransport(key: Uint8Array, receiver: number, counter: number, plaintext: Uint8Array): Uint8Array {
  const sealed = aeadSeal(key, counter, plaintext, new Uint8Array(0));
  const out = new Uint8Array(MESSAGE_TRANSPORT_HEADER_SIZE + sealed.length);
  writeTransportHeader(out, 0, receiver, counter >>> 0, Math.floor(counter / 2 ** 32));
  out.set(sealed, MESSAGE_TRANSPORT_HEADER_SIZE);
  return out;
}

/** Runs the deterministic handshake (with or without the preshared key). */
export function runKat(withPsk = true): KatResult {
  const k = KAT_INPUT;
  const clock = new FakeClock(5_000, k.wallMs);
  const initiator = new StaticIdentity(k.initiatorPrivate);
  const responder = new StaticIdentity(k.responderPrivate);
  const psk = withPsk ? k.presharedKey : null;
  const ih = new Handshake(initiator, responder.publicKey, psk, { clock, random: scriptedRandom([k.initiatorEphemeral]) });
  const responderPeer = { handshake: new Handshake(responder, initiator.publicKey, psk, { clock, random: scriptedRandom([k.responderEphemeral]) }) };
  const initiation = ih.createInitiation(k.initiatorIndex);
  new CookieGenerator(responder.publicKey, { now: () => clock.now() }).addMacs(initiation);
  consumeInitiation(responder, initiation, (key) => (Buffer.from(key).equals(initiator.publicKey) ? responderPeer : undefined));
  const response = responderPeer.handshake.createResponse(k.responderIndex);
  new CookieGenerator(initiator.publicKey, { now: () => clock.now() }).addMacs(response);
  ih.consumeResponse(response);
  const initiatorKeys = ih.deriveKeypair();
  const responderKeys = responderPeer.handshake.deriveKeypair();
  return {
    initiatorPublic: initiator.publicKey,
    responderPublic: responder.publicKey,
    initiation,
    response,
    initiatorKeys,
    responderKeys,
    transport: sealTransport(initiatorKeys.sendKey, initiatorKeys.remoteIndex, 0, k.plaintext),
  };
}

/** Lowercase hex. */
export function hex(b: Uint8Array): string {
  return Buffer.from(b).toString('hex');
}

/** Bytes from hex. */
export function unhex(s: string): Uint8Array {
  return new Uint8Array(Buffer.from(s, 'hex'));
}
