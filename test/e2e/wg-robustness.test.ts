/**
 * Hostile packets at `vectun wg`'s UDP port, from a socket inside its
 * namespace: a relay between vectun (A) and wireguard-go (B) records B's real
 * transport messages, then sends A authenticated replays (§5.4.6 sliding
 * window), copies with a flipped tag bit (Poly1305 fails), truncated messages
 * of every type, and pseudo-random garbage — from the very endpoint A knows
 * for B, and replays also from a new source (which must not move the
 * endpoint: only authenticated, fresh packets roam, §2). Each must be dropped
 * and counted in the device's counters (printed by `vectun wg --json` on exit),
 * and the session must carry on unharmed (same handshake, same endpoint,
 * sha256-verified traffic both ways).
 *
 * Needs root: skips with the reason when unprivileged, fails under `CI`.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { checkLabPrerequisites } from '../../src/lab/netns.js';
import { createWgTopology, ensureWgTools, startUdpRelay, wgSet, type UdpRelay, type WgTopology } from '../../src/lab/wg.js';
import { e2eSkip } from './require-root.js';
import { assertTcpThrough, onlyPeer } from './wg-scenarios.js';

const skip = e2eSkip();
const RELAY_PORT = 40000;
const REPLAYED = 32;
const REPLAYED_FROM_OTHER = 16;
const TAMPERED = 32;
const TRUNCATED = 40;
const GARBAGE = 256;

interface DeviceStatsJson {
  receive: { packets: number; drops: Record<string, number> };
  handshake: Record<string, number | Record<string, number>>;
}

/** Every receive-side drop counter of the device summed: transport drops, handshake drops, Noise rejections. */
function receiveDropTotal(stats: DeviceStatsJson): number {
  let total = 0;
  for (const n of Object.values(stats.receive.drops)) total += n;
  for (const key of ['queueFull', 'malformed', 'badMac1', 'rateLimited', 'noPrivateKey', 'unknownIndex', 'badCookie'] as const) {
    total += Number(stats.handshake[key] ?? 0);
  }
  for (const n of Object.values((stats.handshake['rejected'] as Record<string, number> | undefined) ?? {})) total += n;
  return total;
}

describe('vectun wg under replayed, forged, truncated and garbage packets (wireguard-go peer)', { skip, timeout: 180_000 }, () => {
  let topo: WgTopology | undefined;
  let relay: UdpRelay | undefined;
  let handshakeBefore = 0;
  let sentToA = 0;

  before(async () => {
    checkLabPrerequisites();
    await ensureWgTools();
    topo = await createWgTopology({ a: 'vectun', b: 'wireguard-go', initiator: 'both', startOptions: { vectunArgs: ['--json'] } });
    const { a, b } = topo;
    relay = await startUdpRelay(a.ns, {
      listen: { address: a.underlayV4, port: RELAY_PORT },
      x: { address: b.underlayV4, port: b.listenPort },
      y: { address: a.underlayV4, port: a.listenPort },
      timeoutMs: 150_000,
    });
    // Both peers talk through the relay: it is the endpoint each knows for the other.
    const viaRelay = `${a.underlayV4}:${RELAY_PORT}`;
    await wgSet(a.ns, a.ifname, { peers: [{ publicKey: b.keys.publicKey, endpoint: viaRelay }] });
    await wgSet(b.ns, b.ifname, { peers: [{ publicKey: a.keys.publicKey, endpoint: viaRelay }] });
    await assertTcpThrough(b, a, 4, 2 << 20);
    await assertTcpThrough(a, b, 4, 1 << 20);
  });

  after(async () => {
    await relay?.stop();
    await topo?.remove();
  });

  test('the relay is in the path and has B\'s transport messages to replay', async () => {
    const stats = await relay!.command({ cmd: 'stats' });
    assert.equal(stats.type, 'stats');
    if (stats.type !== 'stats') return;
    assert.ok(stats.recorded >= REPLAYED, `recorded ${stats.recorded} transport messages`);
    assert.ok(stats.xToY > 100 && stats.yToX > 100);
    const peer = await onlyPeer(topo!.a);
    assert.equal(peer.endpoint, `${topo!.a.underlayV4}:${RELAY_PORT}`);
    handshakeBefore = peer.latestHandshake;
    assert.ok(handshakeBefore > 0);
  });

  test('inject: replays (also from a new source), forged tags, truncated messages, garbage', async () => {
    const sent = async (cmd: 'replay' | 'tamper' | 'truncate' | 'garbage', count: number, extra: { fromOther?: boolean; seed?: number } = {}): Promise<number> => {
      const m = await relay!.command({ cmd, count, ...extra });
      assert.equal(m.type, 'done');
      return m.type === 'done' ? m.sent : 0;
    };
    assert.equal(await sent('replay', REPLAYED), REPLAYED);
    assert.equal(await sent('replay', REPLAYED_FROM_OTHER, { fromOther: true }), REPLAYED_FROM_OTHER);
    assert.equal(await sent('tamper', TAMPERED), TAMPERED);
    assert.equal(await sent('truncate', TRUNCATED), TRUNCATED);
    assert.equal(await sent('garbage', GARBAGE, { seed: 7 }), GARBAGE);
    sentToA = REPLAYED + REPLAYED_FROM_OTHER + TAMPERED + TRUNCATED + GARBAGE;
    await new Promise((r) => setTimeout(r, 500));
  });

  test('the session is unharmed: same handshake, endpoint not moved by the spoofed replays, traffic both ways', async () => {
    const { a, b } = topo!;
    const peer = await onlyPeer(a);
    assert.equal(peer.endpoint, `${a.underlayV4}:${RELAY_PORT}`, 'replays from another source did not roam the endpoint');
    assert.equal(peer.latestHandshake, handshakeBefore, 'no new handshake was needed');
    await assertTcpThrough(b, a, 4, 1 << 20, 41);
    await assertTcpThrough(a, b, 6, 1 << 20, 42);
    assert.equal(a.instance.child.exitCode, null, 'vectun still runs');
  });

  test('every injected packet was dropped and counted: replays as replayed, forged tags as authFailed, the rest as malformed/unknown', async () => {
    const a = topo!.a;
    const outcome = await a.instance.stop();
    assert.equal(outcome, 0, `vectun wg exits 0 on SIGTERM: ${a.instance.stderr()}`);
    const out = a.instance.stdout().trim().split('\n').pop() ?? '';
    const report = JSON.parse(out) as { interface: string; reason: string; stats: DeviceStatsJson };
    assert.equal(report.interface, a.ifname);
    assert.match(report.reason, /SIGTERM/);
    const drops = report.stats.receive.drops;
    assert.equal(drops['replayed'], REPLAYED + REPLAYED_FROM_OTHER, 'authenticated replays rejected by the window');
    assert.equal(drops['authFailed'], TAMPERED, 'forged tags rejected');
    assert.equal(receiveDropTotal(report.stats), sentToA, `each injected datagram counted exactly once, nothing else dropped: ${JSON.stringify({ receive: report.stats.receive, handshake: report.stats.handshake })}`);
    assert.ok(report.stats.receive.packets > 1000, 'real traffic was received');
  });
});
