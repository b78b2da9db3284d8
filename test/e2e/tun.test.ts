/**
 * `Tun` on real TUN devices. Each scenario (tun-scenarios.ts) runs in a child
 * process inside a network namespace created here and always removed, so
 * every device lives in a test namespace; addresses are 198.18.0.0/15 only.
 * Needs root: skips with the reason when unprivileged, fails under CI.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { createNetns, type Netns } from '../../src/lab/netns.js';
import { e2eSkip } from './require-root.js';

const skip = e2eSkip();
const SCRIPT = join(__dirname, 'tun-scenarios.js');

async function scenario(name: string, ...extra: Netns[]): Promise<Record<string, unknown>> {
  const ns = await createNetns('tun');
  try {
    const out = await ns.exec(process.execPath, [SCRIPT, name, ...extra.map((n) => n.name)], 120_000);
    return JSON.parse(out.trim().split('\n').pop()!) as Record<string, unknown>;
  } finally {
    await ns.remove();
  }
}

interface Flight {
  maxSegment: number;
  bytes: number;
  superPackets: number;
  segments: number;
}
interface OffloadRun {
  offload: Record<string, boolean>;
  features: Record<string, boolean> | null;
  flight: Flight;
  mtu: number;
}

test('DEV-3/D-8: offload negotiation is reported truthfully (kernel features and super-packets read)', { skip }, async (t) => {
  const r = (await scenario('offload')) as unknown as Record<'true' | 'false', OffloadRun>;
  const on = r.true;
  const off = r.false;
  assert.deepEqual(on.offload, { vnetHdr: true, csum: true, tso4: true, tso6: true, uso4: true, uso6: true }, 'kernel 6.2+ accepts 0x67');
  assert.deepEqual(off.offload, { vnetHdr: false, csum: false, tso4: false, tso6: false, uso4: false, uso6: false });
  // Behaviour: with TSO the kernel hands over super-packets, split into segments no larger than the MTU.
  assert.ok(on.flight.superPackets >= 1, `super-packets read with TSO: ${JSON.stringify(on.flight)}`);
  assert.ok(on.flight.segments > on.flight.superPackets);
  assert.ok(on.flight.maxSegment <= on.mtu);
  assert.ok(on.flight.bytes >= 14600);
  assert.equal(off.flight.superPackets, 0, 'no vnet header: no super-packets');
  assert.ok(off.flight.maxSegment <= off.mtu);
  assert.ok(off.flight.bytes >= 14600);
  if (on.features === null || off.features === null) {
    t.diagnostic('ethtool not installed: feature flags not compared (behaviour above still checked)');
    return;
  }
  // TUN_F_CSUM -> tx-checksum-ip-generic, TSO4/6 -> tx-tcp(6)-segmentation, USO4/6 -> tx-udp-segmentation.
  for (const [run, expected] of [[on, true], [off, false]] as const) {
    assert.equal(run.features!['tx-checksum-ip-generic'], expected);
    assert.equal(run.features!['tx-tcp-segmentation'], expected);
    assert.equal(run.features!['tx-tcp6-segmentation'], expected);
    assert.equal(run.features!['tx-udp-segmentation'], expected);
  }
});

test('RD-7/D-4 at the device: a UDP checksum completed to 0 is read as 0xFFFF, the kernel\'s own value without offload (IPv4, IPv6)', { skip }, async () => {
  type Run = { checksum: number; valid: boolean; payloadIntact: boolean; completesToZero: boolean };
  const r = (await scenario('zero-udp-checksum')) as Record<'true' | 'false', Record<'v4' | 'v6', Run>>;
  for (const mode of ['true', 'false'] as const) {
    for (const family of ['v4', 'v6'] as const) {
      const run = r[mode][family];
      const what = `offload ${mode}, ${family}`;
      assert.equal(run.completesToZero, true, `${what}: the crafted datagram's checksum computes to 0`);
      assert.equal(run.checksum, 0xffff, `${what}: stored as 0xFFFF, not 0 ("no checksum" / dropped over IPv6)`);
      assert.equal(run.valid, true, `${what}: verifies`);
      assert.equal(run.payloadIntact, true, `${what}: payload unchanged`);
    }
  }
});

test("MTU changed from outside under traffic: 'mtu' event, reads continue", { skip }, async () => {
  const r = await scenario('mtu');
  assert.equal(r['mtu'], 1400);
  assert.equal(r['tunMtu'], 1400);
  assert.ok((r['read'] as number) > 0);
  assert.ok((r['readAfter'] as number) > 0, `packets read after the change: ${JSON.stringify(r)}`);
});

test("device deleted from outside during a pending read: 'removed', ERR_TUN_REMOVED (EBADFD), no hang", { skip }, async () => {
  const r = await scenario('removed');
  assert.deepEqual(r, { pendingCode: 'ERR_TUN_REMOVED', pendingErrno: 77, later: 'ERR_TUN_REMOVED', writeLater: 'ERR_TUN_REMOVED' });
});

test("device moved to another namespace: 'moved', the descriptor keeps working there", { skip }, async () => {
  const target = await createNetns('tunto');
  try {
    const r = await scenario('moved', target);
    assert.deepEqual(r, { found: true, stillAttached: true, leftInTarget: false });
  } finally {
    await target.remove();
  }
});

test("moved and followed (TUNGETDEVNETNS): link control and events work in the new namespace (also for a queue adopted there), back, and 'removed' there", { skip }, async () => {
  const target = await createNetns('tunfol');
  try {
    const r = await scenario('follow', target);
    const to = r['to'] as Record<string, unknown>;
    assert.equal(to['followed'], true);
    assert.equal(to['netns'], target.name);
    assert.equal(to['netnsInode'], statSync(join('/run/netns', target.name)).ino);
    const afterMove = r['afterMove'] as Record<string, unknown>;
    assert.equal(afterMove['ifindex'], afterMove['ipIfindex'], 'ifindex re-resolved in the new namespace');
    assert.equal(afterMove['isUp'], false, 'a move takes the link down');
    assert.equal(afterMove['threadBack'], true, 'the JS thread is back in its own namespace after opening sockets in the target');
    const apiUp = r['apiUp'] as { mtu: number; flags: string[] };
    assert.equal(apiUp.mtu, 1400);
    assert.ok(apiUp.flags.includes('UP'), `flags ${apiUp.flags.join(',')}`);
    assert.ok((r['apiAddrs'] as string[]).includes('198.18.4.1/24'));
    assert.ok(!(r['apiDown'] as { flags: string[] }).flags.includes('UP'));
    assert.deepEqual(r['fromFd'], { ifindex: afterMove['ipIfindex'], mtu: 1450 }, 'Tun.fromFd on a queue of the moved device works in its namespace');
    assert.deepEqual(r['ipEvents'], [['mtu', 1300], 'up', 'down']);
    assert.deepEqual(r['state'], { mtu: 1300, isUp: false });
    const back = r['back'] as Record<string, unknown>;
    assert.equal(back['followed'], true);
    assert.equal(back['netns'], r['home']);
    const homeLink = r['homeLink'] as Record<string, number>;
    assert.equal(homeLink['mtu'], 1280, 'setMtu after moving back reaches the home namespace');
    assert.equal(homeLink['ifindex'], homeLink['tunIfindex']);
    assert.equal(r['afterRemoval'], 'ERR_TUN_REMOVED');
  } finally {
    await target.remove();
  }
});

test('close during pending I/O: ERR_TUN_CLOSED, device gone', { skip }, async () => {
  const r = await scenario('close');
  assert.deepEqual(r, { readResult: 'ERR_TUN_CLOSED', writeResult: 'ERR_TUN_CLOSED', stillThere: false, afterClose: 'ERR_TUN_CLOSED' });
});

test('1000 open/close cycles leak no descriptor and no device', { skip }, async () => {
  const r = await scenario('fds');
  assert.equal(r['after'], r['before']);
  assert.equal(r['links'], 0);
});

test('malformed frames (garbage, truncated, bad virtio headers): errors or drops, device keeps working', { skip }, async () => {
  const r = await scenario('malformed');
  const api = r['api'] as { packets: number; failures: [number, string, number | null][] };
  // Every API packet is either accepted (and dropped by the kernel) or reported as failed.
  assert.equal(api.packets + api.failures.length, 3);
  for (const [index, code] of api.failures) {
    assert.ok(index >= 0 && index < 3);
    assert.equal(code, 'ERR_TUN_SYSCALL');
  }
  // The kernel rejects every bad virtio header (tun_get_user: -EINVAL).
  assert.deepEqual(r['raw'], [-22, -22, -22, -22]);
  assert.equal(r['after'], 1);
  assert.deepEqual(r['received'], [64]);
  assert.equal(r['readBack'], 1);
});

test('persist: the device outlives close until reopened with persist false', { skip }, async () => {
  const r = await scenario('persist');
  assert.deepEqual(r, { afterPersistentClose: true, reopenedIfindex: true, afterLastClose: false });
});

test('multi-queue: a queue handed to a worker_thread is adopted with Tun.fromFd', { skip }, async () => {
  const r = await scenario('worker');
  const w = r['worker'] as { name: string; offload: Record<string, boolean> };
  assert.equal(w.name, r['name']);
  assert.equal(w.offload['tso4'], true);
});

test('scenario script is built next to this test', () => {
  assert.ok(existsSync(SCRIPT), SCRIPT);
});
