/**
 * First calls in a fresh process: node --test runs each file in its own
 * process, and nothing here calls into gso.ts or gro.ts before these tests
 * (building the inputs only uses the checksum), so the first `segment`,
 * `Segmenter#segment` and `coalesce` calls below run before the JIT or the
 * WebAssembly tier-up has seen them (interpreter, Liftoff). Their results must equal the reference model and the same calls
 * once warm (RD-9, GRO-A2, GRO-O1).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { coalesce } from '../../src/core/gro.js';
import { Segmenter, segment } from '../../src/core/gso.js';
import { workloadInput } from '../../src/bench/core.js';
import { referenceSegment } from './gso-reference.js';

const copyWrites = (ws: readonly (readonly Uint8Array[])[]): Uint8Array[][] => ws.map((w) => w.map((b) => b.slice()));

test('cold first calls: segment() and Segmenter#segment equal the reference model before and after warm-up (RD-9)', () => {
  const frames = [...workloadInput('e'), ...workloadInput('f')];
  const s = new Segmenter();
  const coldFree = frames.map((f) => segment(f).map((p) => p.slice()));
  const coldFast = frames.map((f) => s.segment(f).map((p) => p.slice()));
  frames.forEach((f, i) => {
    const ref = referenceSegment(f);
    assert.ok(!('code' in ref));
    assert.deepEqual(coldFree[i], ref.packets, 'first segment() call');
    assert.deepEqual(coldFast[i], ref.packets, 'first Segmenter call');
  });
  for (let k = 0; k < 300; k++) for (const f of frames) s.segment(f), segment(f);
  frames.forEach((f, i) => {
    assert.deepEqual(segment(f).map((p) => p.slice()), coldFree[i], 'warm segment() = cold');
    assert.deepEqual(s.segment(f).map((p) => p.slice()), coldFast[i], 'warm Segmenter = cold');
  });
});

test('cold first calls: coalesce() gives the same writes and in-place rewrites before and after warm-up (GRO-A2, GRO-O1, PIT-2)', () => {
  for (const id of ['a', 'b', 'c', 'd'] as const) {
    const pristine = workloadInput(id);
    const udp = id === 'c';
    const coldIn = pristine.map((p) => p.slice());
    const cold = copyWrites(coalesce(coldIn, { udp }));
    for (let k = 0; k < 300; k++) coalesce(pristine.map((p) => p.slice()), { udp });
    const warmIn = pristine.map((p) => p.slice());
    assert.deepEqual(copyWrites(coalesce(warmIn, { udp })), cold, `${id}: writes`);
    assert.deepEqual(warmIn, coldIn, `${id}: rewritten heads`);
    assert.equal(cold.length, { a: 3, b: 8, c: 3, d: 128 }[id], `${id}: write count`);
  }
});
