import { test } from 'node:test';
import assert from 'node:assert/strict';
import { caseSeedOf } from '../../fuzz/harness.js';
import { runWgFuzz } from '../../fuzz/wg.js';

test('wg fuzz (§5.4 parsers and consumers): a bounded run finds no violation and covers every target', () => {
  const r = runWgFuzz({ seed: 1, count: 400, seconds: 60 });
  assert.equal(r.violation, undefined, r.violation && `${r.violation.kind}: ${r.violation.message} (case ${r.violation.caseSeed})`);
  assert.equal(r.cases, 400);
  for (const k of ['parseCases', 'initiationCases', 'responseCases', 'cookieCases', 'lookupCases'] as const) assert.ok(r[k] > 10, `${k} exercised`);
  assert.ok(r.rejected > 50, 'mutated handshakes are rejected');
  assert.ok(r.accepted > 10, 'unmutated ones and unauthenticated-byte mutations pass');
});

test('wg fuzz: a replayed case runs alone', () => {
  const r = runWgFuzz({ caseSeed: caseSeedOf(1, 3) });
  assert.equal(r.cases, 1);
  assert.equal(r.violation, undefined);
});
