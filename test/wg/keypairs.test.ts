import { test } from 'node:test';
import assert from 'node:assert/strict';
import { VectunError } from '../../src/errors.js';
import { IndexTable, Keypair, Keypairs } from '../../src/wg/keypairs.js';
import { REJECT_AFTER_TIME, REKEY_AFTER_MESSAGES, REKEY_AFTER_TIME } from '../../src/wg/constants.js';
import { Handshake, StaticIdentity } from '../../src/wg/noise.js';
import { scriptedRandom } from './kat.js';

let nextIndex = 1;
function keypair(isInitiator: boolean, createdAt = 0): Keypair {
  const i = nextIndex++;
  return new Keypair({ sendKey: new Uint8Array(32).fill(i), receiveKey: new Uint8Array(32).fill(i + 100), localIndex: i, remoteIndex: i + 1000, isInitiator, createdAt });
}

test('rotation as initiator (§6.3): new becomes current at once, current becomes previous, the old previous is retired', () => {
  const retired: Keypair[] = [];
  const k = new Keypairs((kp) => retired.push(kp));
  const a = keypair(true);
  const b = keypair(true);
  const c = keypair(true);
  k.install(a);
  assert.equal(k.current, a);
  k.install(b);
  assert.equal(k.current, b);
  assert.equal(k.previous, a);
  k.install(c);
  assert.deepEqual([k.current, k.previous, k.next], [c, b, null]);
  assert.deepEqual(retired, [a]);
  assert.deepEqual(a.sendKey, new Uint8Array(32), 'retired keys are zeroed');
});

test('rotation as responder (§6.3): the new keypair waits as next until data arrives with it (key confirmation)', () => {
  const retired: Keypair[] = [];
  const k = new Keypairs((kp) => retired.push(kp));
  const cur = keypair(true);
  k.install(cur);
  const old = keypair(true);
  k.install(old); // current=old, previous=cur
  const n = keypair(false);
  k.install(n);
  assert.deepEqual([k.current, k.previous, k.next], [old, null, n], 'previous dropped, current still sends');
  assert.deepEqual(retired, [cur]);
  assert.equal(k.receivedWith(old), false, 'data with current changes nothing');
  assert.equal(k.receivedWith(n), true);
  assert.deepEqual([k.current, k.previous, k.next], [n, old, null]);
  assert.equal(k.receivedWith(n), false, 'only the first time');
  const n2 = keypair(false);
  const n3 = keypair(false);
  k.install(n2);
  k.install(n3);
  assert.equal(k.next, n3, 'a newer unconfirmed next replaces the older');
  assert.ok(retired.includes(n2));
  assert.equal(k.byLocalIndex(n3.localIndex), n3);
  assert.equal(k.byLocalIndex(123456), null);
});

test('an initiator handshake completing while a responder next is pending: next becomes previous (wireguard-go)', () => {
  const k = new Keypairs();
  const cur = keypair(true);
  k.install(cur);
  const n = keypair(false);
  k.install(n);
  const mine = keypair(true);
  k.install(mine);
  assert.deepEqual([k.current, k.previous, k.next], [mine, n, null]);
});

test('clear retires all three', () => {
  const retired: Keypair[] = [];
  const k = new Keypairs((kp) => retired.push(kp));
  k.install(keypair(true));
  k.install(keypair(true));
  k.install(keypair(false));
  k.clear();
  assert.deepEqual([k.current, k.previous, k.next], [null, null, null]);
  assert.equal(retired.length, 3);
});

test('counters and expiry (§6.1): REJECT_AFTER_TIME for send and receive, REKEY_AFTER_MESSAGES / REKEY_AFTER_TIME (initiator only)', () => {
  const k = keypair(true, 1000);
  assert.equal(k.nextSendCounter(), 0);
  assert.equal(k.nextSendCounter(), 1);
  assert.equal(k.reserveSendCounters(10), 2);
  assert.equal(k.sendCounter, 12);
  assert.ok(k.canSend(1000 + REJECT_AFTER_TIME - 1));
  assert.ok(!k.canSend(1000 + REJECT_AFTER_TIME));
  assert.ok(k.canReceive(1000 + REJECT_AFTER_TIME));
  assert.ok(!k.canReceive(1000 + REJECT_AFTER_TIME + 1));
  assert.ok(!k.needsRekeyOnSend(1000 + REKEY_AFTER_TIME));
  assert.ok(k.needsRekeyOnSend(1000 + REKEY_AFTER_TIME + 1));
  const r = keypair(false, 1000);
  assert.ok(!r.needsRekeyOnSend(1000 + REKEY_AFTER_TIME + 1), 'the responder does not rekey on age');
  r.sendCounter = REKEY_AFTER_MESSAGES + 2 ** 10; // +1 is not representable at 2^60
  assert.ok(r.needsRekeyOnSend(1000));
  r.sendCounter = 2 ** 64;
  assert.equal(r.nextSendCounter(), -1, 'exhausted');
  assert.equal(r.reserveSendCounters(1), -1);
  assert.ok(!r.canSend(1000));
});

test('index table: random unique 32-bit indices (LE from 4 random bytes), collisions retried, swap to keypair, delete', () => {
  const same = Uint8Array.of(1, 0, 0, 0);
  const table = new IndexTable<string>(scriptedRandom([same, same, Uint8Array.of(2, 0, 0, 0), Uint8Array.of(0xff, 0xff, 0xff, 0xff)]));
  const hs = new Handshake(StaticIdentity.generate(), StaticIdentity.generate().publicKey);
  assert.equal(table.allocateForHandshake('p1', hs), 1);
  assert.equal(table.allocateForHandshake('p2', hs), 2, 'the colliding draw was skipped');
  assert.equal(table.allocateForHandshake('p1', hs), 0xffffffff);
  assert.equal(table.lookup(1)?.handshake, hs);
  const kp = keypair(true);
  assert.ok(table.swapForKeypair(1, kp));
  assert.equal(table.lookup(1)?.keypair, kp);
  assert.equal(table.lookup(1)?.handshake, null);
  assert.equal(table.lookup(1)?.peer, 'p1');
  assert.equal(table.swapForKeypair(77, kp), false);
  table.deletePeer('p1');
  assert.equal(table.lookup(1), undefined);
  assert.equal(table.lookup(0xffffffff), undefined);
  assert.equal(table.size, 1);
  table.delete(2);
  assert.equal(table.size, 0);
  const full = new IndexTable<string>(() => Uint8Array.of(5, 0, 0, 0));
  full.allocateForHandshake('x', hs);
  assert.throws(() => full.allocateForHandshake('y', hs), (e: unknown) => e instanceof VectunError && e.code === 'ERR_WG_INDEX_TABLE_FULL');
  const real = new IndexTable<number>();
  const seen = new Set<number>();
  for (let i = 0; i < 1000; i++) seen.add(real.allocateForHandshake(i, hs));
  assert.equal(seen.size, 1000);
});
