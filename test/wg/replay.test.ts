import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { REPLAY_WINDOW_SIZE, ReplayFilter } from '../../src/wg/replay.js';
import { REJECT_AFTER_MESSAGES } from '../../src/wg/constants.js';

test('replay window (§5.4.6, RFC 6479): each counter once; in-window reordering accepted; older than the window refused', () => {
  const f = new ReplayFilter();
  assert.equal(REPLAY_WINDOW_SIZE, 8128, 'wireguard-go: (128 - 1) blocks of 64');
  assert.ok(f.checkCounter(0));
  assert.ok(!f.checkCounter(0));
  for (let i = 1; i < 100; i++) assert.ok(f.checkCounter(i));
  assert.ok(!f.checkCounter(50));
  assert.ok(f.checkCounter(200));
  assert.ok(f.checkCounter(150), 'late but inside the window');
  assert.ok(!f.checkCounter(150));
  assert.ok(f.checkCounter(200 + REPLAY_WINDOW_SIZE));
  assert.ok(!f.checkCounter(200 + REPLAY_WINDOW_SIZE), "the new top once");
  assert.ok(!f.checkCounter(100), "now more than the window behind");
});

test('replay window edges: last - counter = 8128 is checked exactly, 8129 is refused', () => {
  const f = new ReplayFilter();
  assert.ok(f.checkCounter(10_000));
  assert.ok(f.checkCounter(10_000 - REPLAY_WINDOW_SIZE));
  assert.ok(!f.checkCounter(10_000 - REPLAY_WINDOW_SIZE));
  assert.ok(!f.checkCounter(10_000 - REPLAY_WINDOW_SIZE - 1));
  assert.ok(f.checkCounter(10_001));
});

test('counters >= REJECT_AFTER_MESSAGES (2^64 - 2^13 - 1) are refused (§6.1); the one below is accepted; 64-bit halves', () => {
  const f = new ReplayFilter();
  assert.equal(f.checkCounter(REJECT_AFTER_MESSAGES), false);
  assert.equal(f.checkCounter(2n ** 64n - 1n), false);
  assert.equal(f.checkCounter(-1), false);
  assert.equal(f.checkCounter(REJECT_AFTER_MESSAGES - 1n), true);
  assert.equal(f.checkCounter(REJECT_AFTER_MESSAGES - 1n), false);
  assert.equal(f.checkCounter(5), false, 'far behind the window now');
  const g = new ReplayFilter();
  assert.ok(g.check(0, 1), '2^32');
  assert.ok(g.check(0xffffffff, 0), '2^32 - 1 is one behind');
  assert.ok(!g.check(0xffffffff, 0));
  const packet = new Uint8Array(16);
  new DataView(packet.buffer).setBigUint64(8, 2n ** 32n + 1n, true);
  assert.ok(g.checkAt(packet, 8));
  assert.ok(!g.checkAt(packet, 8));
});

test('reset empties the filter', () => {
  const f = new ReplayFilter();
  for (let i = 0; i < 300; i++) f.checkCounter(i);
  f.reset();
  for (let i = 0; i < 300; i++) assert.ok(f.checkCounter(i));
});

/** The semantics in plain words: accept c iff c < limit, unseen, and not more than the window behind the greatest accepted. */
class ReferenceFilter {
  private seen = new Set<bigint>();
  private last = 0n;
  check(c: bigint): boolean {
    if (c >= REJECT_AFTER_MESSAGES) return false;
    if (c <= this.last && this.last - c > BigInt(REPLAY_WINDOW_SIZE)) return false;
    if (this.seen.has(c)) return false;
    this.seen.add(c);
    if (c > this.last) this.last = c;
    return true;
  }
}

test('property: the ring filter equals the plain-words model on random counter sequences (jumps, reorders, duplicates)', () => {
  const step = fc.oneof(
    fc.integer({ min: -300, max: 300 }).map((d) => ({ kind: 'near' as const, d })),
    fc.integer({ min: -9000, max: 9000 }).map((d) => ({ kind: 'near' as const, d })),
    fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }).map((v) => ({ kind: 'abs' as const, v })),
    fc.constant({ kind: 'limit' as const }),
  );
  fc.assert(
    fc.property(fc.array(step, { minLength: 1, maxLength: 300 }), (steps) => {
      const f = new ReplayFilter();
      const ref = new ReferenceFilter();
      let cur = 0n;
      for (const s of steps) {
        let c: bigint;
        if (s.kind === 'near') c = cur + BigInt(s.d);
        else if (s.kind === 'abs') c = s.v;
        else c = REJECT_AFTER_MESSAGES - 1n - BigInt(steps.length % 3);
        if (c < 0n) c = 0n;
        cur = c;
        if (f.checkCounter(c) !== ref.check(c)) return false;
      }
      return true;
    }),
    { numRuns: 300, seed: 7 },
  );
});
