import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  bridgeStatsJson,
  describeOffload,
  formatBridgeStats,
  formatCoreTable,
  formatDemoSummary,
  formatMachineFacts,
  formatThroughputTable,
  snapshotCounters,
  type DemoRunResult,
  type DirectionCounters,
} from '../../src/cli/report.js';

test('offload description: TSO/USO bits, csum only, none without vnet header (D-8)', () => {
  assert.equal(describeOffload({ vnetHdr: true, csum: true, tso4: true, tso6: true, uso4: true, uso6: true }), 'tso4 tso6 uso4 uso6');
  assert.equal(describeOffload({ vnetHdr: true, csum: true, tso4: true, tso6: true, uso4: false, uso6: false }), 'tso4 tso6');
  assert.equal(describeOffload({ vnetHdr: true, csum: true }), 'csum only');
  assert.equal(describeOffload({ vnetHdr: true }), 'vnet hdr only');
  assert.equal(describeOffload({ vnetHdr: false, tso4: true }), 'none');
  assert.equal(describeOffload(undefined), 'none');
});

const c = (o: Partial<DirectionCounters>): DirectionCounters => ({ reads: 0, packets: 0, bytes: 0, written: 0, writes: 0, drops: 0, ...o });

function run(o: Partial<DemoRunResult>): DemoRunResult {
  return {
    label: 'offload',
    negotiated: 'tso4 tso6 uso4 uso6',
    family: 'IPv4',
    bytes: 5 * 2 ** 30,
    seconds: 4,
    intact: true,
    sha256: 'ab'.repeat(32),
    data: c({ reads: 1000, packets: 40_000, written: 40_000, writes: 1250, drops: 1 }),
    acks: c({ drops: 2 }),
    framesRead: 1000,
    segmentsRead: 40_000,
    ...o,
  };
}

test('demo summary: Gbit/s, coalescing ratios, drops of both directions, sha256 verdict, comparison ratio', () => {
  const text = formatDemoSummary([
    run({}),
    run({ label: 'no offload', negotiated: 'none', bytes: 2 ** 30, seconds: 4, intact: false, data: c({ reads: 10, packets: 10, written: 10, writes: 10 }), acks: c({}), framesRead: 10, segmentsRead: 10 }),
  ]);
  const lines = text.split('\n');
  assert.match(lines[0]!, /^run +offload negotiated +data +seconds +Gbit\/s +segs\/frame +pkts\/write +drops +sha256$/);
  // 5 GiB in 4 s = 10.74 Gbit/s; 40000/1000 = 40.0 segments per frame; 40000/1250 = 32.0 per write; 1 + 2 drops
  assert.match(lines[2]!, /^offload +tso4 tso6 uso4 uso6 +5\.00 GiB +4\.00 +10\.74 +40\.0 +32\.0 +3 +ok$/);
  assert.match(lines[3]!, /^no offload +none +1\.00 GiB +4\.00 +2\.15 +1\.0 +1\.0 +0 +MISMATCH$/);
  assert.match(text, /offload is 5\.00x the throughput without offload/);
});

test('demo summary without the comparison run has no ratio line', () => {
  const text = formatDemoSummary([run({ label: 'no offload' })]);
  assert.doesNotMatch(text, /throughput without offload/);
  assert.equal(text.trimEnd().split('\n').length, 3);
});

test('counters are copied, not referenced', () => {
  const live = c({ packets: 1 });
  const snap = snapshotCounters(live);
  live.packets = 99;
  assert.equal(snap.packets, 1);
});

test('bridge stats as text and JSON', () => {
  const stats = { aToB: c({ reads: 10, packets: 200, bytes: 300_000, written: 198, writes: 9, drops: 2 }), bToA: c({ reads: 5, packets: 5, bytes: 260, written: 5, writes: 5 }) };
  const text = formatBridgeStats({ a: 'vt0', b: 'vt1' }, stats, 2);
  assert.match(text, /^forwarded for 2\.0 s, 1\.20 Mbit\/s average$/m);
  assert.match(text, /^vt0 -> vt1 +200 +293 KiB +10 +20\.0 +9 +22\.0 +2$/m);
  assert.match(text, /^vt1 -> vt0 +5 +260 B +5 +1\.0 +5 +1\.0 +0$/m);

  const json = JSON.parse(bridgeStatsJson({ a: 'vt0', b: 'vt1' }, { a: 'tso4 tso6', b: 'none' }, stats, 2.5)) as Record<string, unknown>;
  assert.deepEqual(json['devices'], [
    { name: 'vt0', offload: 'tso4 tso6' },
    { name: 'vt1', offload: 'none' },
  ]);
  assert.equal(json['seconds'], 2.5);
  assert.deepEqual(json['aToB'], { ...stats.aToB, packetsPerRead: 20, packetsPerWrite: 22 });
  assert.equal(json['error'], undefined);
  const failed = JSON.parse(bridgeStatsJson({ a: 'a', b: 'b' }, { a: '', b: '' }, stats, 1, 'ERR_TUN_REMOVED: gone')) as Record<string, unknown>;
  assert.equal(failed['error'], 'ERR_TUN_REMOVED: gone');
});

test('bench table: ratios against the veth row measured in the same run; machine busy share when measured', () => {
  const text = formatThroughputTable([
    { setup: 'veth', gbitPerSecond: 20, samples: [20], machineBusy: 0.614 },
    { setup: 'vectun-offload', gbitPerSecond: 13, samples: [13], forwarder: { packetsPerRead: 43.2, packetsPerWrite: 40.1, drops: 0, cpuShare: 0.93 }, machineBusy: 0.986 },
    { setup: 'vectun-no-offload', gbitPerSecond: 2.5, samples: [2.5], forwarder: { packetsPerRead: 1, packetsPerWrite: 1, drops: 4, cpuShare: 1 } },
  ]);
  assert.match(text, /^veth pair \(kernel limit\) +20\.00 +1\.00x +- +- +- +- +61%$/m);
  assert.match(text, /^vectun bridge, offload +13\.00 +0\.65x +43\.2 +40\.1 +0 +93% of a core +99%$/m);
  assert.match(text, /^vectun bridge, no offload +2\.50 +0\.13x +1\.0 +1\.0 +4 +100% of a core +-$/m);
});

test('machine facts header', () => {
  assert.equal(
    formatMachineFacts({ cpus: 2, cpuModel: 'Xeon', kernel: 'Linux 6.8.0', node: 'v20.20.2' }),
    'cores:  2 (Xeon)\nkernel: Linux 6.8.0\nnode:   v20.20.2\n',
  );
});

test('core table: time per batch, its ratio to a checksum pass of the same run, the reference', () => {
  const text = formatCoreTable([
    { workload: 'a', description: 'coalesce 128 TCPv4 segments', memory: 'arena', usPerBatch: 12.5, payloadGBps: 14.83, checksumUs: 5, reference: { wireguardGo: 29 } },
    { workload: 'e', description: 'segment one 64 KiB frame', memory: 'plain', usPerBatch: 8, payloadGBps: 8.1, checksumUs: 0, reference: { wireguardGo: 7 } },
  ]);
  assert.match(text, /^\(a\) coalesce 128 TCPv4 segments +arena +12\.50 +14\.83 +2\.50x +29$/m);
  assert.match(text, /^\(e\) segment one 64 KiB frame +plain +8\.00 +8\.10 +n\/a +7$/m);
});
