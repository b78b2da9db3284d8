import { test } from 'node:test';
import assert from 'node:assert/strict';
import { runChecksumBenchmarks, runColdCoreBenchmark, runCoreBenchmarks } from '../../src/bench/core.js';

// Not a timing test: checks that every workload does the work it claims on
// every iteration (inputs restored between coalesce batches, PIT-2).
test('core benchmarks: each workload produces the expected writes/segments in every memory kind', () => {
  const results = runCoreBenchmarks({ batches: 3, repeats: 2 });
  const outputs = new Map(results.map((r) => [`${r.workload}/${r.memory}`, r.outputs]));
  const want: Record<string, number> = {
    a: 3, // 45 + 45 + 38 segments of 1448 (GRO-L1: 46 would exceed 65535)
    b: 8, // 16 per flow, one write each
    c: 3, // 54 + 54 + 20 datagrams of 1200
    d: 128,
    e: 45,
    f: 54,
  };
  for (const r of results) {
    assert.equal(r.outputs, want[r.workload], `${r.workload}/${r.memory}`);
    assert.ok(r.usPerBatch > 0 && r.checksumUs > 0 && Number.isFinite(r.ratioToChecksum));
    assert.equal(r.beatsWireguardGo, r.usPerBatch < r.reference.wireguardGo);
  }
  const kinds = (gso: boolean): string[] => (gso ? ['arena', 'arena2', 'plain', 'plain-fast'] : ['arena', 'plain', 'plain-fast']);
  const want2 = (['a', 'b', 'c', 'd', 'e', 'f'] as const).flatMap((id) => kinds(id === 'e' || id === 'f').map((k) => `${id}/${k}`));
  assert.deepEqual([...outputs.keys()].sort(), want2.sort());
  const apis = new Map(results.map((r) => [`${r.workload}/${r.memory}`, r.api]));
  assert.equal(apis.get('a/plain'), 'coalesce');
  assert.equal(apis.get('a/plain-fast'), 'Coalescer#coalesce');
  assert.equal(apis.get('e/plain'), 'segment');
  assert.equal(apis.get('e/plain-fast'), 'Segmenter#segment');
});

test('cold core benchmark: one workload per form reports the figures it claims', () => {
  for (const [id, form, api, outputs] of [['a', 'free', 'coalesce', 3], ['f', 'fast', 'Segmenter#segment', 54]] as const) {
    const r = runColdCoreBenchmark(id, form);
    assert.equal(r.api, api);
    assert.equal(r.workload, id);
    assert.ok(r.firstUs > 0 && r.next9Us > 0 && r.shortRunUs > 0 && r.checksumUs > 0);
    assert.equal(r.reference.wireguardGo, id === 'a' ? 29.0 : 8.6);
    void outputs;
  }
});

test('checksum benchmark: three ways to call CK-1 at two sizes, each measured', () => {
  const rows = runChecksumBenchmarks({ rounds: 5, repeats: 1 });
  assert.deepEqual(rows.map((r) => r.bytes), [1468, 1468, 1468, 65536, 65536, 65536]);
  for (const r of rows) assert.ok(r.nsPerCall > 0 && Math.abs(r.gbps - r.bytes / r.nsPerCall) < 1e-9);
});
