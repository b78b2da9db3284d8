import { test } from 'node:test';
import assert from 'node:assert/strict';
import { runChecksumBenchmarks, runCoreBenchmarks } from '../../src/bench/core.js';

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
  assert.deepEqual([...outputs.keys()].sort(), ['a/arena', 'a/plain', 'b/arena', 'b/plain', 'c/arena', 'c/plain', 'd/arena', 'd/plain', 'e/arena', 'e/arena2', 'e/plain', 'f/arena', 'f/arena2', 'f/plain']);
});

test('checksum benchmark: three ways to call CK-1 at two sizes, each measured', () => {
  const rows = runChecksumBenchmarks({ rounds: 5, repeats: 1 });
  assert.deepEqual(rows.map((r) => r.bytes), [1468, 1468, 1468, 65536, 65536, 65536]);
  for (const r of rows) assert.ok(r.nsPerCall > 0 && Math.abs(r.gbps - r.bytes / r.nsPerCall) < 1e-9);
});
