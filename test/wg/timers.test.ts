import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PeerTimers } from '../../src/wg/timers.js';
import { KEEPALIVE_TIMEOUT, MAX_TIMER_HANDSHAKES, REJECT_AFTER_TIME, REKEY_TIMEOUT } from '../../src/wg/constants.js';

function timers(jitter = 100, persistentKeepalive = 0) {
  const clock = { t: 10_000 };
  const pt = new PeerTimers({ now: () => clock.t, jitter: () => jitter, persistentKeepalive });
  const at = (t: number) => {
    clock.t = t;
    return pt.expire();
  };
  return { pt, clock, at };
}

test('retransmit (§6.4): REKEY_TIMEOUT + jitter after an initiation, retried MAX_TIMER_HANDSHAKES times, then give up and zero keys 3 x REJECT_AFTER_TIME later', () => {
  const { pt, clock, at } = timers(100);
  pt.handshakeInitiated();
  assert.equal(pt.nextDeadline(), 10_000 + REKEY_TIMEOUT + 100);
  assert.deepEqual(at(10_000 + REKEY_TIMEOUT + 99), []);
  let retries = 0;
  for (;;) {
    const actions = at(pt.nextDeadline());
    if (actions.includes('give-up')) break;
    assert.deepEqual(actions, ['retransmit-handshake']);
    retries++;
    // The device sends the retry: the guard lets it through after REKEY_TIMEOUT.
    assert.ok(pt.mayInitiate(true));
    pt.handshakeInitiated();
    assert.ok(retries <= MAX_TIMER_HANDSHAKES + 1, 'bounded');
  }
  assert.equal(retries, MAX_TIMER_HANDSHAKES + 1, 'attempts 0..18 retry, the 19th expiry gives up (wireguard-go: > MaxTimerHandshakes)');
  assert.equal(pt.deadline('zeroKeyMaterial'), clock.t + 3 * REJECT_AFTER_TIME);
  assert.deepEqual(at(clock.t + 3 * REJECT_AFTER_TIME), ['zero-key-material']);
  assert.equal(pt.nextDeadline(), Infinity);
});

test('handshake complete stops the retransmission and resets the counters', () => {
  const { pt, at } = timers();
  pt.handshakeInitiated();
  at(pt.nextDeadline());
  assert.equal(pt.handshakeAttempts, 1);
  pt.handshakeComplete();
  assert.equal(pt.isPending('retransmitHandshake'), false);
  assert.equal(pt.handshakeAttempts, 0);
  assert.equal(pt.lastHandshakeAt, 10_000 + REKEY_TIMEOUT + 100);
});

test('mayInitiate: at most one initiation per REKEY_TIMEOUT; a non-retry resets the attempts', () => {
  const { pt, clock } = timers();
  assert.ok(pt.mayInitiate(false));
  clock.t += REKEY_TIMEOUT - 1;
  assert.equal(pt.mayInitiate(false), false);
  clock.t += 1;
  pt.handshakeAttempts = 5;
  assert.ok(pt.mayInitiate(true));
  assert.equal(pt.handshakeAttempts, 5);
  clock.t += REKEY_TIMEOUT;
  assert.ok(pt.mayInitiate(false));
  assert.equal(pt.handshakeAttempts, 0);
});

test('keepalive (§6.5): KEEPALIVE_TIMEOUT after data received, cancelled by anything we send; again if more data came meanwhile', () => {
  const { pt, at } = timers();
  pt.dataReceived();
  assert.equal(pt.deadline('sendKeepalive'), 10_000 + KEEPALIVE_TIMEOUT);
  pt.anyAuthenticatedPacketSent();
  assert.equal(pt.isPending('sendKeepalive'), false);
  pt.dataReceived();
  pt.dataReceived(); // while pending: one more owed
  assert.deepEqual(at(10_000 + KEEPALIVE_TIMEOUT), ['send-keepalive']);
  assert.equal(pt.deadline('sendKeepalive'), 10_000 + 2 * KEEPALIVE_TIMEOUT, 're-armed for the data that came meanwhile');
  assert.deepEqual(at(10_000 + 2 * KEEPALIVE_TIMEOUT), ['send-keepalive']);
  assert.equal(pt.isPending('sendKeepalive'), false);
});

test('new handshake (§6.2): KEEPALIVE_TIMEOUT + REKEY_TIMEOUT + jitter after data sent without any reply; any received packet cancels', () => {
  const { pt, at } = timers(200);
  pt.dataSent();
  const d = 10_000 + KEEPALIVE_TIMEOUT + REKEY_TIMEOUT + 200;
  assert.equal(pt.deadline('newHandshake'), d);
  pt.dataSent();
  assert.equal(pt.deadline('newHandshake'), d, 'not pushed back by more data');
  pt.anyAuthenticatedPacketReceived();
  assert.equal(pt.isPending('newHandshake'), false);
  pt.dataSent();
  assert.deepEqual(at(d), ['new-handshake']);
});

test('persistent keepalive: the interval after any authenticated packet traversal; off at 0', () => {
  const { pt, at } = timers(0, 25);
  pt.anyAuthenticatedPacketTraversal();
  assert.equal(pt.deadline('persistentKeepalive'), 10_000 + 25_000);
  assert.deepEqual(at(35_000), ['persistent-keepalive']);
  const off = timers(0, 0);
  off.pt.anyAuthenticatedPacketTraversal();
  assert.equal(off.pt.nextDeadline(), Infinity);
});

test('session derived arms zeroing after 3 x REJECT_AFTER_TIME; several due timers fire in deadline order', () => {
  const { pt, at } = timers(0);
  pt.sessionDerived();
  pt.dataReceived();
  pt.handshakeInitiated();
  assert.deepEqual(at(10_000 + 3 * REJECT_AFTER_TIME), ['retransmit-handshake', 'send-keepalive', 'zero-key-material']);
});

test('last-minute rekey on receive (wireguard-go keepKeyFreshReceiving): initiator keypair older than REJECT - KEEPALIVE - REKEY_TIMEOUT, once', () => {
  const { pt, clock } = timers();
  const created = clock.t;
  const limit = REJECT_AFTER_TIME - KEEPALIVE_TIMEOUT - REKEY_TIMEOUT;
  clock.t = created + limit;
  assert.equal(pt.keepKeyFreshReceiving({ isInitiator: true, createdAt: created }), false);
  clock.t += 1;
  assert.equal(pt.keepKeyFreshReceiving({ isInitiator: false, createdAt: created }), false, 'responder keypairs never');
  assert.equal(pt.keepKeyFreshReceiving(null), false);
  assert.equal(pt.keepKeyFreshReceiving({ isInitiator: true, createdAt: created }), true);
  assert.equal(pt.keepKeyFreshReceiving({ isInitiator: true, createdAt: created }), false, 'once until the next handshake completes');
  pt.handshakeComplete();
  assert.equal(pt.keepKeyFreshReceiving({ isInitiator: true, createdAt: created }), true);
});

test('stop clears every timer and ignores events until start; jitter is clamped to [0, 334)', () => {
  const { pt } = timers(10_000);
  pt.handshakeInitiated();
  assert.equal(pt.deadline('retransmitHandshake'), 10_000 + REKEY_TIMEOUT + 333);
  pt.stop();
  assert.equal(pt.nextDeadline(), Infinity);
  pt.dataReceived();
  pt.sessionDerived();
  assert.equal(pt.nextDeadline(), Infinity);
  pt.start();
  pt.dataReceived();
  assert.equal(pt.isPending('sendKeepalive'), true);
  const random = new PeerTimers({ now: () => 0 });
  for (let i = 0; i < 50; i++) {
    random.handshakeInitiated();
    const j = random.deadline('retransmitHandshake') - REKEY_TIMEOUT;
    assert.ok(j >= 0 && j < 334 && Number.isInteger(j));
  }
});
