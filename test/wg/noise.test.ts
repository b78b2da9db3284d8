import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { errorCode as code } from '../error-code.js';
import { aeadOpen } from '../../src/wg/crypto.js';
import { Handshake, INITIAL_CHAIN_KEY, INITIAL_HASH, StaticIdentity, consumeInitiation } from '../../src/wg/noise.js';
import { parseTransport } from '../../src/wg/messages.js';
import { FakeClock, KAT_INPUT, hex, runKat } from './kat.js';

const FIXTURE = JSON.parse(fs.readFileSync(path.join(__dirname, '..', '..', '..', 'test', 'wg', 'fixtures', 'handshake-kat.json'), 'utf8')) as Record<'psk' | 'noPsk', Record<string, string>>;

interface Pair {
  a: StaticIdentity;
  b: StaticIdentity;
  clock: FakeClock;
  initiator: Handshake;
  responderPeer: { handshake: Handshake };
  lookup: (k: Uint8Array) => { handshake: Handshake } | undefined;
}

function pair(pskA: Uint8Array | null = null, pskB: Uint8Array | null = pskA): Pair {
  const a = StaticIdentity.generate();
  const b = StaticIdentity.generate();
  const clock = new FakeClock();
  const initiator = new Handshake(a, b.publicKey, pskA, { clock });
  const responderPeer = { handshake: new Handshake(b, a.publicKey, pskB, { clock }) };
  return { a, b, clock, initiator, responderPeer, lookup: (k) => (Buffer.from(k).equals(a.publicKey) ? responderPeer : undefined) };
}

test('initial chaining key and hash (§5.4): C0 = HASH(CONSTRUCTION), H0 = HASH(C0 ‖ IDENTIFIER)', () => {
  // Values as computed by wireguard-go's init() (checked through the cross-check's identical transcripts).
  assert.equal(hex(INITIAL_CHAIN_KEY).length, 64);
  assert.notEqual(hex(INITIAL_CHAIN_KEY), hex(INITIAL_HASH));
  assert.equal(hex(INITIAL_CHAIN_KEY), '60e26daef327efc02ec335e2a025d2d016eb4206f87277f52d38d1988b78cd36');
  assert.equal(hex(INITIAL_HASH), '2211b361081ac566691243db458ad5322d9c6c662293e8b70ee19c65ba079ef3');
});

for (const variant of ['psk', 'noPsk'] as const) {
  test(`KAT (${variant}, §5.4.2-§5.4.5): fixed keys, ephemerals, indices and time give the recorded bytes and keys`, () => {
    const r = runKat(variant === 'psk');
    const f = FIXTURE[variant]!;
    assert.equal(hex(r.initiatorPublic), f['initiatorPublic']);
    assert.equal(hex(r.responderPublic), f['responderPublic']);
    assert.equal(hex(r.initiation), f['initiation']);
    assert.equal(hex(r.response), f['response']);
    assert.equal(hex(r.initiatorKeys.sendKey), f['initiatorSendKey']);
    assert.equal(hex(r.initiatorKeys.receiveKey), f['initiatorReceiveKey']);
    assert.equal(hex(r.transport), f['transport']);
    assert.deepEqual(r.responderKeys.receiveKey, r.initiatorKeys.sendKey);
    assert.deepEqual(r.responderKeys.sendKey, r.initiatorKeys.receiveKey);
    assert.equal(r.initiatorKeys.localIndex, KAT_INPUT.initiatorIndex);
    assert.equal(r.initiatorKeys.remoteIndex, KAT_INPUT.responderIndex);
    assert.equal(r.responderKeys.localIndex, KAT_INPUT.responderIndex);
    assert.equal(r.initiatorKeys.isInitiator, true);
    assert.equal(r.responderKeys.isInitiator, false);
  });
}

test('the preshared key changes the keys (§5.4.3): psk and no-psk fixtures differ only from the response on', () => {
  assert.equal(FIXTURE.psk['initiation'], FIXTURE.noPsk['initiation']);
  assert.notEqual(FIXTURE.psk['response'], FIXTURE.noPsk['response']);
  assert.notEqual(FIXTURE.psk['initiatorSendKey'], FIXTURE.noPsk['initiatorSendKey']);
});

test('full handshake with random keys: both sides derive crossed keys and decrypt each other; states end zeroed', () => {
  const p = pair(new Uint8Array(32).fill(9));
  const init = p.initiator.createInitiation(100);
  assert.equal(p.initiator.state, 'initiation-created');
  assert.equal(consumeInitiation(p.b, init, p.lookup), p.responderPeer);
  assert.equal(p.responderPeer.handshake.state, 'initiation-consumed');
  assert.equal(p.responderPeer.handshake.remoteIndex, 100);
  const resp = p.responderPeer.handshake.createResponse(200);
  p.initiator.consumeResponse(resp);
  const ki = p.initiator.deriveKeypair();
  const kr = p.responderPeer.handshake.deriveKeypair();
  assert.deepEqual(ki.sendKey, kr.receiveKey);
  assert.deepEqual(ki.receiveKey, kr.sendKey);
  assert.notDeepEqual(ki.sendKey, ki.receiveKey);
  assert.equal(p.initiator.state, 'zeroed');
  assert.equal(p.responderPeer.handshake.state, 'zeroed');
  assert.equal(code(() => p.initiator.deriveKeypair()), 'ERR_WG_HANDSHAKE_STATE', 'keys are derived once');
  const kat = runKat();
  const t = parseTransport(kat.transport);
  assert.deepEqual(aeadOpen(kat.responderKeys.receiveKey, t.counter, t.encrypted, new Uint8Array(0)), KAT_INPUT.plaintext);
});

test('responder (§5.4.2): a replayed initiation (same TAI64N) is ERR_WG_REPLAY, one within 20 ms is ERR_WG_FLOOD; state kept', () => {
  const p = pair();
  const first = p.initiator.createInitiation(1);
  consumeInitiation(p.b, first, p.lookup);
  const before = p.responderPeer.handshake.remoteIndex;
  assert.equal(code(() => consumeInitiation(p.b, first, p.lookup)), 'ERR_WG_REPLAY');
  p.clock.wall += 1000;
  p.clock.mono += 10; // < HANDSHAKE_INITIATION_RATE
  const second = p.initiator.createInitiation(2);
  assert.equal(code(() => consumeInitiation(p.b, second, p.lookup)), 'ERR_WG_FLOOD');
  assert.equal(p.responderPeer.handshake.remoteIndex, before, 'rejected initiations leave the state alone');
  p.clock.mono += 20;
  consumeInitiation(p.b, second, p.lookup);
  assert.equal(p.responderPeer.handshake.remoteIndex, 2);
  p.clock.mono += 1000;
  p.clock.wall -= 5000; // clock went back: older timestamp
  assert.equal(code(() => consumeInitiation(p.b, p.initiator.createInitiation(3), p.lookup)), 'ERR_WG_REPLAY');
});

test('responder: unknown initiator is ERR_WG_UNKNOWN_PEER; tampered static or timestamp is ERR_WG_DECRYPT; low-order ephemeral is ERR_WG_KEY', () => {
  const p = pair();
  const init = p.initiator.createInitiation(1);
  assert.equal(code(() => consumeInitiation(p.b, init, () => undefined)), 'ERR_WG_UNKNOWN_PEER');
  for (const at of [40, 87, 88, 115]) {
    const bad = Uint8Array.from(init);
    bad[at]! ^= 0x80;
    assert.equal(code(() => consumeInitiation(p.b, bad, p.lookup)), 'ERR_WG_DECRYPT', `byte ${at}`);
  }
  const lowOrder = Uint8Array.from(init);
  lowOrder.fill(0, 8, 40);
  assert.equal(code(() => consumeInitiation(p.b, lowOrder, p.lookup)), 'ERR_WG_KEY');
  const eph = Uint8Array.from(init);
  eph[9]! ^= 1;
  assert.notEqual(code(() => consumeInitiation(p.b, eph, p.lookup)), 'no error', 'another ephemeral breaks the static AEAD');
  const other = StaticIdentity.generate();
  assert.equal(code(() => consumeInitiation(other, init, p.lookup)), 'ERR_WG_DECRYPT', 'not addressed to this identity');
  assert.equal(p.responderPeer.handshake.state, 'zeroed');
  assert.equal(code(() => consumeInitiation(p.b, init.subarray(0, 100), p.lookup)), 'ERR_WG_MESSAGE_LENGTH');
});

test('initiator (§5.4.3): response without initiation, for another index, tampered, or with another PSK is rejected; state kept', () => {
  const p = pair(new Uint8Array(32).fill(1), new Uint8Array(32).fill(2));
  assert.equal(code(() => p.responderPeer.handshake.createResponse(5)), 'ERR_WG_HANDSHAKE_STATE');
  consumeInitiation(p.b, p.initiator.createInitiation(1), p.lookup);
  const resp = p.responderPeer.handshake.createResponse(5);
  assert.equal(code(() => p.initiator.consumeResponse(resp)), 'ERR_WG_DECRYPT', 'psk mismatch');
  assert.equal(p.initiator.state, 'initiation-created');
  const fresh = new Handshake(p.a, p.b.publicKey);
  assert.equal(code(() => fresh.consumeResponse(resp)), 'ERR_WG_HANDSHAKE_STATE');

  const q = pair();
  consumeInitiation(q.b, q.initiator.createInitiation(1), q.lookup);
  const r = q.responderPeer.handshake.createResponse(5);
  const otherIndex = Uint8Array.from(r);
  otherIndex[8] = 2;
  assert.equal(code(() => q.initiator.consumeResponse(otherIndex)), 'ERR_WG_HANDSHAKE_STATE');
  const tampered = Uint8Array.from(r);
  tampered[50]! ^= 1;
  assert.equal(code(() => q.initiator.consumeResponse(tampered)), 'ERR_WG_DECRYPT');
  q.initiator.consumeResponse(r);
  assert.equal(q.initiator.state, 'response-consumed');
  assert.equal(code(() => q.initiator.consumeResponse(r)), 'ERR_WG_HANDSHAKE_STATE', 'a second copy of the response');
});

test('a new initiation supersedes the outstanding one: the old response no longer fits', () => {
  const p = pair();
  consumeInitiation(p.b, p.initiator.createInitiation(1), p.lookup);
  const oldResponse = p.responderPeer.handshake.createResponse(9);
  p.initiator.createInitiation(2);
  assert.equal(code(() => p.initiator.consumeResponse(oldResponse)), 'ERR_WG_HANDSHAKE_STATE');
});

test('a peer key whose static-static DH is zero cannot handshake (ERR_WG_KEY), as wireguard-go', () => {
  const a = StaticIdentity.generate();
  const h = new Handshake(a, new Uint8Array(32));
  assert.equal(code(() => h.createInitiation(1)), 'ERR_WG_KEY');
  assert.equal(code(() => new Handshake(a, new Uint8Array(31))), 'ERR_WG_KEY');
  assert.equal(code(() => h.setPresharedKey(new Uint8Array(3))), 'ERR_WG_KEY');
});

test('setIdentity recomputes the static-static DH and clears a handshake in progress', () => {
  const p = pair();
  p.initiator.createInitiation(1);
  const c = StaticIdentity.generate();
  p.initiator.setIdentity(c);
  assert.equal(p.initiator.state, 'zeroed');
  const peerC = { handshake: new Handshake(p.b, c.publicKey, null, { clock: p.clock }) };
  assert.equal(consumeInitiation(p.b, p.initiator.createInitiation(3), () => peerC), peerC, 'the new identity is used');
});
