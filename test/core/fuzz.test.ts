import { test } from 'node:test';
import assert from 'node:assert/strict';
import { coalesce } from '../../src/core/gro.js';
import { caseSeedOf } from '../../fuzz/harness.js';
import { checkWrites, runFuzz } from '../../fuzz/run.js';
import { V4, buildPacket } from './packets.js';

test('fuzz (RD-*, GRO-*, D-5): a bounded run finds no violation and covers both targets', () => {
  const r = runFuzz({ seed: 1, count: 400, seconds: 60 });
  assert.equal(r.violation, undefined, r.violation && `${r.violation.kind}: ${r.violation.message} (case ${r.violation.caseSeed})`);
  assert.equal(r.cases, 400);
  assert.ok(r.segmentCases > 100 && r.coalesceCases > 100, 'both targets exercised');
  assert.ok(r.segmentErrors > 0, 'some mutated frames are rejected');
  assert.ok(r.roundTrips > 0, 'segment(coalesce(x)) = x was checked');
});

test('fuzz: case seeds are deterministic and a replayed case runs alone', () => {
  assert.equal(caseSeedOf(1, 5), caseSeedOf(1, 5));
  assert.notEqual(caseSeedOf(1, 5), caseSeedOf(2, 5));
  const r = runFuzz({ caseSeed: caseSeedOf(1, 3) });
  assert.equal(r.cases, 1);
});

test('fuzz invariants (GRO-L1, GRO-L2, GRO-A5, GRO-A6): the checker rejects broken write lists', () => {
  const flow = [1, 101, 201].map((seq) => buildPacket({ version: 4, proto: 'tcp', src: V4.A, dst: V4.B, payload: 100, seq }));
  const writes = coalesce(flow);
  assert.equal(writes.length, 1);
  assert.deepEqual(checkWrites(flow, writes), [[0, 1, 2]]);
  const kind = (fn: () => unknown): string => {
    try {
      fn();
    } catch (e) {
      return (e as { kind: string }).kind;
    }
    return 'none';
  };
  const w = writes[0]!;
  const extra = buildPacket({ version: 4, proto: 'udp', src: V4.A, dst: V4.B, payload: 5 });
  assert.equal(kind(() => checkWrites([...flow, extra], writes)), 'write-missing');
  assert.equal(kind(() => checkWrites(flow, [w.slice(0, 3)])), 'ip-length');
  assert.equal(kind(() => checkWrites(flow, [[...w, w[2]!]])), 'write-duplicate');
  const hdr = w[0]!.slice();
  hdr[4] ^= 1; // gso_size
  assert.equal(kind(() => checkWrites(flow, [[hdr, ...w.slice(1)]])), 'header-gso');
  assert.equal(kind(() => checkWrites(flow, [[new Uint8Array(10).fill(1), w[1]!], [new Uint8Array(10), ...w.slice(2)]])), 'header-not-zero');
  const many = Array.from({ length: 1025 }, () => w[2]!);
  assert.equal(kind(() => checkWrites(flow, [[w[0]!, w[1]!, ...many]])), 'write-entries');
});
