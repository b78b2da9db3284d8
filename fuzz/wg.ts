/**
 * Fuzz target for the WireGuard protocol modules (`npm run fuzz`, or
 * `node dist/fuzz/run.js --target wg`). Each case, from its own case seed, is one of:
 * - parse: a valid message of each type or random bytes, mutated (flipped
 *   bytes, type and reserved bytes, truncation, extension), into every
 *   parser. Only a parsed message or `ERR_WG_MESSAGE_TYPE`/`_LENGTH` may come
 *   out; parsed messages re-serialize to the same bytes.
 * - initiation / response: a fresh handshake's message, mutated, into the
 *   consumer (consumeInitiation, Handshake.consumeResponse). It may succeed
 *   only if the mutation touched no authenticated byte (the sender index and
 *   the MACs are not covered by the handshake AEADs); a failure must be a
 *   coded `VectunError` and leave the state as it was, which is proven by
 *   the unmutated message succeeding afterwards. mac1 must fail for any
 *   change before mac2.
 * - cookie: a cookie reply, mutated, into CookieGenerator.consumeReply: true
 *   only if the nonce and encrypted cookie are untouched.
 * - lookup: random bytes as an IP packet into the AllowedIPs lookups: a peer
 *   or null, never a throw.
 */
import { VectunError } from '../src/errors.js';
import { AllowedIps } from '../src/wg/allowed-ips.js';
import { CookieChecker, CookieGenerator, endpointBytes } from '../src/wg/cookie.js';
import { hash } from '../src/wg/crypto.js';
import {
  hasValidLength,
  messageType,
  parseCookieReply,
  parseInitiation,
  parseMessage,
  parseResponse,
  parseTransport,
  serializeCookieReply,
  serializeInitiation,
  serializeResponse,
  type Message,
} from '../src/wg/messages.js';
import { Handshake, StaticIdentity, consumeInitiation, type NoiseClock } from '../src/wg/noise.js';
import { Violation, prng, runCases, type FuzzOptions, type FuzzReportBase } from './harness.js';

/** Options of {@link runWgFuzz}. */
/** Bounds and seeds of a WireGuard fuzz run. */
export type WgFuzzOptions = FuzzOptions;

/** What a run covered, and the first violation. */
export interface WgFuzzReport extends FuzzReportBase {
  parseCases: number;
  initiationCases: number;
  responseCases: number;
  cookieCases: number;
  lookupCases: number;
  /** Mutated handshake messages the consumers rejected with a coded error. */
  rejected: number;
  /** Mutated handshake messages accepted (only unauthenticated bytes touched). */
  accepted: number;
}

const TEXT = new TextEncoder();
const HANDSHAKE_CODES = new Set(['ERR_WG_MESSAGE_TYPE', 'ERR_WG_MESSAGE_LENGTH', 'ERR_WG_KEY', 'ERR_WG_DECRYPT', 'ERR_WG_UNKNOWN_PEER', 'ERR_WG_REPLAY', 'ERR_WG_FLOOD', 'ERR_WG_HANDSHAKE_STATE']);

interface World {
  initiator: StaticIdentity;
  responder: StaticIdentity;
  clock: NoiseClock & { mono: number; wall: number };
  samples: Uint8Array[];
  table: AllowedIps<number>;
}

let world: World | undefined;

function getWorld(): World {
  if (world !== undefined) return world;
  const initiator = new StaticIdentity(hash(TEXT.encode('fuzz initiator')));
  const responder = new StaticIdentity(hash(TEXT.encode('fuzz responder')));
  const clock = { mono: 1e6, wall: 1.7e12, now() { return this.mono; }, wallNow() { return this.wall; } };
  const { initiation, response, cookieReply } = exchange(initiator, responder, clock);
  const transport = new Uint8Array(64);
  transport[0] = 4;
  const table = new AllowedIps<number>();
  ['198.18.0.0/15', '198.18.1.0/24', '0.0.0.0/1', '2001:2::/48', '::/0'].forEach((c, i) => table.insert(c, i));
  world = { initiator, responder, clock, samples: [initiation, response, cookieReply, transport], table };
  return world;
}

/** A fresh initiator/responder pair with an initiation consumed and a response made (not yet consumed). */
function exchange(initiator: StaticIdentity, responder: StaticIdentity, clock: NoiseClock) {
  const ih = new Handshake(initiator, responder.publicKey, null, { clock });
  const rPeer = { handshake: new Handshake(responder, initiator.publicKey, null, { clock }) };
  const initiation = ih.createInitiation(1);
  const gen = new CookieGenerator(responder.publicKey);
  gen.addMacs(initiation);
  consumeInitiation(responder, initiation, () => rPeer);
  const response = rPeer.handshake.createResponse(2);
  new CookieGenerator(initiator.publicKey).addMacs(response);
  const cookieReply = new CookieChecker(responder.publicKey).createReply(initiation, 1, endpointBytes(Uint8Array.of(198, 18, 0, 1), 1))!;
  return { ih, rPeer, initiation, response, cookieReply, gen };
}

/** Flips 1..3 random bytes (or truncates / extends); returns the mutated copy and the touched offsets (Infinity for a length change). */
function mutate(r: (n: number) => number, b: Uint8Array): { bytes: Uint8Array; touched: number[] } {
  const kind = r(10);
  if (kind === 0) {
    const n = r(b.length);
    return { bytes: b.slice(0, n), touched: [Infinity] };
  }
  if (kind === 1) {
    const out = new Uint8Array(b.length + 1 + r(8));
    out.set(b);
    return { bytes: out, touched: [Infinity] };
  }
  const bytes = Uint8Array.from(b);
  const touched: number[] = [];
  for (let i = 0, n = 1 + r(3); i < n; i++) {
    const at = r(b.length);
    bytes[at]! ^= 1 + r(255);
    touched.push(at);
  }
  return { bytes, touched };
}

function expectCoded(kind: string, fn: () => unknown, allowed: Set<string>): { ok: true; value: unknown } | { ok: false; code: string } {
  try {
    return { ok: true, value: fn() };
  } catch (e) {
    if (!(e instanceof VectunError)) throw new Violation(`${kind}-uncoded`, e instanceof Error ? e.stack ?? e.message : String(e));
    if (!allowed.has(e.code)) throw new Violation(`${kind}-code`, `unexpected code ${e.code}: ${e.message}`);
    return { ok: false, code: e.code };
  }
}

const PARSE_CODES = new Set(['ERR_WG_MESSAGE_TYPE', 'ERR_WG_MESSAGE_LENGTH']);

function parseCase(r: (n: number) => number, w: World): void {
  let b: Uint8Array;
  if (r(4) === 0) b = Uint8Array.from({ length: r(200) }, () => r(256));
  else b = mutate(r, w.samples[r(w.samples.length)]!).bytes;
  if (b.length >= 4 && r(3) === 0) b[0] = r(7);
  if (b.length >= 4 && r(4) === 0) b.fill(0, 1, 4);
  const t = messageType(b);
  const any = expectCoded('parse', () => parseMessage(b), PARSE_CODES);
  const valid = t !== 0 && hasValidLength(t, b.length);
  if (any.ok !== valid) throw new Violation('parse-accept', `type ${t}, length ${b.length}: parsed=${any.ok}`);
  for (const [type, parse] of [[1, parseInitiation], [2, parseResponse], [3, parseCookieReply], [4, parseTransport]] as const) {
    const one = expectCoded('parse', () => parse(b), PARSE_CODES);
    if (one.ok !== (valid && t === type)) throw new Violation('parse-specific', `parser ${type} on type ${t}, length ${b.length}`);
  }
  if (any.ok) {
    const m = any.value as Message;
    let again: Uint8Array | undefined;
    if (m.type === 1) again = serializeInitiation(m);
    else if (m.type === 2) again = serializeResponse(m);
    else if (m.type === 3) again = serializeCookieReply(m);
    else if (m.encrypted.length !== b.length - 16 || m.receiver !== ((b[4]! | (b[5]! << 8) | (b[6]! << 16) | (b[7]! << 24)) >>> 0)) throw new Violation('parse-transport', 'header fields');
    if (again !== undefined && Buffer.compare(again, b) !== 0) throw new Violation('parse-roundtrip', `type ${m.type} does not re-serialize to its bytes`);
  }
}

function handshakeCase(r: (n: number) => number, w: World, which: 'initiation' | 'response', report: WgFuzzReport): void {
  w.clock.mono += 1000;
  w.clock.wall += 1000;
  const ex = exchange(w.initiator, w.responder, w.clock);
  const original = which === 'initiation' ? ex.initiation : ex.response;
  const { bytes, touched } = r(5) === 0 ? { bytes: Uint8Array.from(original), touched: [] as number[] } : mutate(r, original);
  const changed = touched.filter((at) => at === Infinity || bytes[at] !== original[at]);
  // Bytes no handshake AEAD covers: the sender index and the two MACs.
  const unauthenticated = which === 'initiation' ? (at: number) => (at >= 4 && at < 8) || at >= 116 : (at: number) => (at >= 4 && at < 8) || at >= 60;
  const mayPass = changed.every((at) => at !== Infinity && unauthenticated(at));
  const mac1Start = which === 'initiation' ? 116 : 60;
  const checker = new CookieChecker(which === 'initiation' ? w.responder.publicKey : w.initiator.publicKey);
  if (changed.some((at) => at < mac1Start + 16) && checker.checkMac1(bytes)) throw new Violation('mac1', `mac1 passed with bytes ${changed.join(',')} changed`);

  if (which === 'initiation') {
    const fresh = { handshake: new Handshake(w.responder, w.initiator.publicKey, null, { clock: w.clock }) };
    const out = expectCoded('initiation', () => consumeInitiation(w.responder, bytes, () => fresh), HANDSHAKE_CODES);
    if (out.ok && !mayPass) throw new Violation('initiation-accepted', `accepted with authenticated bytes ${changed.join(',')} changed`);
    if (!out.ok && mayPass) throw new Violation('initiation-rejected', `rejected (${out.code}) though only ${changed.join(',')} changed`);
    if (out.ok) report.accepted++;
    else {
      report.rejected++;
      if (fresh.handshake.state !== 'zeroed') throw new Violation('initiation-state', `state ${fresh.handshake.state} after a rejection`);
      consumeInitiation(w.responder, original, () => fresh); // throws (harness violation) if state was harmed
    }
  } else {
    const out = expectCoded('response', () => ex.ih.consumeResponse(bytes), HANDSHAKE_CODES);
    if (out.ok && !mayPass) throw new Violation('response-accepted', `accepted with authenticated bytes ${changed.join(',')} changed`);
    if (!out.ok && mayPass) throw new Violation('response-rejected', `rejected (${out.code}) though only ${changed.join(',')} changed`);
    if (out.ok) report.accepted++;
    else {
      report.rejected++;
      if (ex.ih.state !== 'initiation-created') throw new Violation('response-state', `state ${ex.ih.state} after a rejection`);
      ex.ih.consumeResponse(original);
    }
    const a = ex.ih.deriveKeypair();
    const b = ex.rPeer.handshake.deriveKeypair();
    if (Buffer.compare(a.sendKey, b.receiveKey) !== 0) throw new Violation('response-keys', 'keys differ after the exchange');
  }
}

function cookieCase(r: (n: number) => number, w: World): void {
  const checker = new CookieChecker(w.responder.publicKey);
  const gen = new CookieGenerator(w.responder.publicKey);
  const hs = new Handshake(w.initiator, w.responder.publicKey, null, { clock: w.clock });
  const msg = hs.createInitiation(7);
  gen.addMacs(msg);
  const reply = checker.createReply(msg, 7, endpointBytes(Uint8Array.of(198, 18, 0, 9), 9))!;
  const { bytes, touched } = r(5) === 0 ? { bytes: Uint8Array.from(reply), touched: [] as number[] } : mutate(r, reply);
  const changed = touched.filter((at) => at === Infinity || bytes[at] !== reply[at]);
  const out = expectCoded('cookie', () => gen.consumeReply(bytes), PARSE_CODES);
  const mayPass = changed.every((at) => at !== Infinity && at >= 4 && at < 8);
  const structural = changed.some((at) => at === Infinity || at < 4);
  if (out.ok === structural) throw new Violation('cookie-parse', `changed ${changed.join(',')}: ok=${out.ok}`);
  if (out.ok && out.value !== mayPass) throw new Violation('cookie-accept', `changed ${changed.join(',')}: consumeReply=${String(out.value)}`);
}

function lookupCase(r: (n: number) => number, w: World): void {
  const b = Uint8Array.from({ length: r(60) }, () => r(256));
  if (b.length > 0 && r(2) === 0) b[0] = r(2) === 0 ? 0x45 : 0x60;
  for (const fn of [() => w.table.lookupDestination(b), () => w.table.lookupSource(b), () => w.table.lookupDestination(b, r(b.length + 2))]) {
    let v: unknown;
    try {
      v = fn();
    } catch (e) {
      throw new Violation('lookup-throw', String(e));
    }
    if (v !== null && typeof v !== 'number') throw new Violation('lookup-value', String(v));
  }
}

/** Runs the WireGuard fuzz cases; stops at the first violation. */
export function runWgFuzz(o: WgFuzzOptions = {}): WgFuzzReport {
  const report: WgFuzzReport = { cases: 0, parseCases: 0, initiationCases: 0, responseCases: 0, cookieCases: 0, lookupCases: 0, rejected: 0, accepted: 0, seconds: 0 };
  const w = getWorld();
  // The salt keeps this target's case seeds apart from the core target's for the same --seed.
  return runCases(o, 0x5767, report, (cs) => {
    const r = prng(cs);
    const pick = r(10);
    if (pick < 4) {
      report.parseCases++;
      parseCase(r, w);
    } else if (pick < 6) {
      report.initiationCases++;
      handshakeCase(r, w, 'initiation', report);
    } else if (pick < 8) {
      report.responseCases++;
      handshakeCase(r, w, 'response', report);
    } else if (pick < 9) {
      report.cookieCases++;
      cookieCase(r, w);
    } else {
      report.lookupCases++;
      lookupCase(r, w);
    }
  });
}
