import { test } from 'node:test';
import assert from 'node:assert/strict';
import { HANDSHAKES_BURSTABLE, HandshakeRateLimiter, UnderLoadDetector } from '../../src/wg/ratelimiter.js';

test('rate limiter (§5.3, wireguard-go ratelimiter): 20 per second per source after a burst; sources are independent', () => {
  let now = 0;
  const r = new HandshakeRateLimiter(() => now);
  let allowed = 0;
  for (let i = 0; i < 20; i++) if (r.allow('198.18.0.1')) allowed++;
  // wireguard-go needs tokens strictly above the cost, so of the 5-packet burst the last token stays unused.
  assert.equal(allowed, HANDSHAKES_BURSTABLE - 1);
  assert.ok(r.allow('198.18.0.2'), 'another source has its own bucket');
  now += 1;
  assert.equal(r.allow('198.18.0.1'), true, 'one token plus 1 ms of credit');
  assert.equal(r.allow('198.18.0.1'), false);
  now += 49;
  assert.equal(r.allow('198.18.0.1'), false, 'exactly one packet cost (50 ms) is not enough');
  now += 1;
  assert.equal(r.allow('198.18.0.1'), true);
  now += 10_000;
  allowed = 0;
  for (let i = 0; i < 20; i++) if (r.allow('198.18.0.1')) allowed++;
  assert.equal(allowed, HANDSHAKES_BURSTABLE - 1, 'credit is capped at the burst');
});

test('rate limiter forgets sources idle for more than a second', () => {
  let now = 0;
  const r = new HandshakeRateLimiter(() => now);
  r.allow('a');
  r.allow('b');
  assert.equal(r.size, 2);
  now = 1500;
  r.allow('c');
  assert.equal(r.size, 1);
});

test('under load while the handshake queue is at the threshold, and for 1 s after (wireguard-go IsUnderLoad)', () => {
  let now = 0;
  const d = new UnderLoadDetector(128, () => now);
  assert.equal(d.isUnderLoad(127), false);
  assert.equal(d.isUnderLoad(128), true);
  now = 999;
  assert.equal(d.isUnderLoad(0), true);
  now = 1000;
  assert.equal(d.isUnderLoad(0), false);
});
