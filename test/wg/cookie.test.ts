import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CookieChecker, CookieGenerator, endpointBytes } from '../../src/wg/cookie.js';
import { COOKIE_REFRESH_TIME } from '../../src/wg/constants.js';
import { Handshake, StaticIdentity } from '../../src/wg/noise.js';

function setup() {
  let now = 1_000;
  const clock = (): number => now;
  const responder = StaticIdentity.generate();
  const initiator = StaticIdentity.generate();
  const checker = new CookieChecker(responder.publicKey, { now: clock });
  const generator = new CookieGenerator(responder.publicKey, { now: clock });
  const hs = new Handshake(initiator, responder.publicKey);
  let index = 1;
  const message = (): Uint8Array => {
    const m = hs.createInitiation(index++);
    generator.addMacs(m);
    return m;
  };
  return { checker, generator, message, advance: (ms: number) => (now += ms), responder };
}

const SRC = endpointBytes(Uint8Array.of(198, 18, 0, 1), 51820);
const OTHER = endpointBytes(Uint8Array.of(198, 18, 0, 1), 51821);

test('endpoint bytes: address then port little-endian (wireguard-go DstToBytes)', () => {
  assert.deepEqual([...SRC], [198, 18, 0, 1, 0x6c, 0xca]);
  assert.equal(endpointBytes(new Uint8Array(16), 1).length, 18);
});

test('mac1 (§5.4.4): valid for the addressed key only; any changed byte or another key fails', () => {
  const s = setup();
  const m = s.message();
  assert.ok(s.checker.checkMac1(m));
  for (const at of [0, 4, 60, 115, 116, 131]) {
    const bad = Uint8Array.from(m);
    bad[at]! ^= 1;
    assert.equal(s.checker.checkMac1(bad), false, `byte ${at}`);
  }
  const mac2Changed = Uint8Array.from(m);
  mac2Changed[140]! ^= 1;
  assert.ok(s.checker.checkMac1(mac2Changed), 'mac1 does not cover mac2');
  assert.equal(new CookieChecker(StaticIdentity.generate().publicKey).checkMac1(m), false);
  assert.equal(new CookieChecker(null).checkMac1(m), false, 'no key: nothing passes');
  assert.equal(s.checker.checkMac1(new Uint8Array(10)), false);
});

test('mac2 and cookies (§5.4.7): without a cookie mac2 is zero and fails; after a cookie reply it passes for that source only', () => {
  const s = setup();
  const m = s.message();
  assert.deepEqual(m.subarray(132), new Uint8Array(16));
  assert.equal(s.checker.checkMac2(m, SRC), false);
  const reply = s.checker.createReply(m, 1, SRC)!;
  assert.equal(reply.length, 64);
  assert.equal(reply[0], 3);
  assert.equal(s.generator.hasCookie, false);
  assert.ok(s.generator.consumeReply(reply));
  assert.ok(s.generator.hasCookie);
  const m2 = s.message();
  assert.notDeepEqual(m2.subarray(132), new Uint8Array(16));
  assert.ok(s.checker.checkMac1(m2));
  assert.ok(s.checker.checkMac2(m2, SRC));
  assert.equal(s.checker.checkMac2(m2, OTHER), false, 'the cookie is bound to address and port');
  const bad = Uint8Array.from(m2);
  bad[147]! ^= 1;
  assert.equal(s.checker.checkMac2(bad, SRC), false);
});

test('cookie replies: one for another message (other mac1), tampered, or before anything was sent is refused', () => {
  const s = setup();
  const fresh = new CookieGenerator(s.responder.publicKey);
  const m = s.message();
  const reply = s.checker.createReply(m, 1, SRC)!;
  assert.equal(fresh.consumeReply(reply), false, 'no message sent yet');
  s.message(); // a newer message: its mac1 is the AD now
  assert.equal(s.generator.consumeReply(reply), false);
  const m3 = s.message();
  const r3 = s.checker.createReply(m3, 3, SRC)!;
  const t = Uint8Array.from(r3);
  t[40]! ^= 1;
  assert.equal(s.generator.consumeReply(t), false);
  assert.ok(s.generator.consumeReply(r3));
  assert.equal(new CookieChecker(null).createReply(m3, 1, SRC), null);
});

test('the cookie secret rotates after COOKIE_REFRESH_TIME (§5.4.7) and a held cookie expires after it', () => {
  const s = setup();
  s.generator.consumeReply(s.checker.createReply(s.message(), 1, SRC)!) || assert.fail('first reply');
  s.advance(COOKIE_REFRESH_TIME);
  const m = s.message();
  assert.ok(s.checker.checkMac2(m, SRC), 'still valid at exactly the refresh time');
  s.advance(1);
  assert.equal(s.checker.checkMac2(m, SRC), false, 'secret too old');
  const m2 = s.message();
  assert.deepEqual(m2.subarray(132), new Uint8Array(16), 'the generator stops using an old cookie');
  // A new reply comes from a fresh secret; mac2 works again.
  assert.ok(s.generator.consumeReply(s.checker.createReply(m2, 2, SRC)!));
  assert.ok(s.checker.checkMac2(s.message(), SRC));
});
