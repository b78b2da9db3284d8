/**
 * End to end: namespaces A and B, each with one vectun TUN, joined by the
 * `bridge` forwarding loop running in this test process. TCP (64 MiB, sha256
 * compared end to end) and UDP (every datagram's index, length, checksum and
 * body checked) over IPv4 and IPv6, with offload on (GSO split on read, RD-9;
 * GRO coalescing on write, sec. 5) and off.
 *
 * Needs root: skips with the reason when unprivileged, fails under `CI`.
 * Every transfer is bounded in bytes and time; namespaces are always removed.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { bridge, type BridgeDirectionStats, type BridgeHandle } from '../../src/device/bridge.js';
import { checkLabPrerequisites, liveNetns } from '../../src/lab/netns.js';
import { createTunTopology, type TunTopology } from '../../src/lab/topology.js';
import { tcpTransfer, udpTransfer } from '../../src/lab/traffic.js';
import { e2eSkip } from './require-root.js';

const TCP_BYTES = 64 << 20;
const UDP_COUNT = 20_000;
/** UDP payload per datagram: fits a 1500 MTU over IPv6 (1500 - 40 - 8). */
const UDP_SIZE = 1400;
const TRANSFER_TIMEOUT_MS = 60_000;
const skip = e2eSkip();

type Counters = Pick<BridgeDirectionStats, 'reads' | 'packets' | 'bytes' | 'written' | 'writes' | 'drops'>;
const snapshot = (s: BridgeDirectionStats): Counters => ({
  reads: s.reads,
  packets: s.packets,
  bytes: s.bytes,
  written: s.written,
  writes: s.writes,
  drops: s.drops,
});
const delta = (from: Counters, to: BridgeDirectionStats): Counters => {
  const now = snapshot(to);
  return {
    reads: now.reads - from.reads,
    packets: now.packets - from.packets,
    bytes: now.bytes - from.bytes,
    written: now.written - from.written,
    writes: now.writes - from.writes,
    drops: now.drops - from.drops,
  };
};

for (const offload of [true, false]) {
  describe(`forwarding between two vectun TUNs, offload ${offload ? 'on' : 'off'}`, { skip, timeout: 300_000 }, () => {
    let topo: TunTopology | undefined;
    let fwd: BridgeHandle | undefined;

    before(async () => {
      checkLabPrerequisites();
      topo = await createTunTopology({ offload });
      fwd = bridge(topo.tunA, topo.tunB);
    });

    after(async () => {
      // stop() first so the closes below are not reported as errors; not awaited before
      // remove(): closing the TUNs settles any read or write the bridge still has pending.
      const stopping = fwd?.stop();
      await topo?.remove();
      await stopping;
      await fwd?.done;
    });

    test(`offload negotiated as asked (DEV-3, D-8)`, () => {
      const o = topo!.tunA.offload;
      if (offload) {
        assert.equal(o.vnetHdr, true);
        assert.equal(o.tso4 && o.tso6 && o.csum, true, 'TSO4/TSO6/CSUM accepted');
      } else {
        assert.equal(o.vnetHdr, false);
        assert.equal(o.tso4 || o.tso6 || o.uso4 || o.uso6, false);
      }
    });

    for (const family of [4, 6] as const) {
      test(`TCP over IPv${family}: 64 MiB arrive with the same sha256 (RD-9, GRO-T5)`, async () => {
        const t = topo!;
        const before = snapshot(fwd!.stats.aToB);
        const r = await tcpTransfer({
          from: t.a.ns,
          to: t.b.ns,
          address: family === 4 ? t.b.v4 : t.b.v6,
          bytes: TCP_BYTES,
          timeoutMs: TRANSFER_TIMEOUT_MS,
          seed: family * 7 + (offload ? 1 : 0),
        });
        assert.equal(r.sent.bytes, TCP_BYTES);
        assert.equal(r.received.bytes, TCP_BYTES);
        assert.equal(r.received.sha256, r.sent.sha256);
        assert.equal(r.intact, true);
        const d = delta(before, fwd!.stats.aToB);
        assert.ok(d.bytes >= TCP_BYTES, `the bridge carried the data (${d.bytes} bytes)`);
        assert.equal(d.drops, 0);
        if (offload) {
          // GSO super-packets are split on read (several segments per read) and coalesced on write.
          assert.ok(d.packets / d.reads > 2, `segments per read ${(d.packets / d.reads).toFixed(2)}`);
          assert.ok(d.written / d.writes > 2, `packets per write ${(d.written / d.writes).toFixed(2)}`);
        } else {
          assert.equal(d.writes, d.written, 'without offload every packet is its own write');
        }
        assert.equal(fwd!.error, undefined);
      });

      test(`UDP over IPv${family}: ${UDP_COUNT} datagrams, each once with its exact contents (GRO-U)`, async () => {
        const t = topo!;
        const before = snapshot(fwd!.stats.aToB);
        const r = await udpTransfer({
          from: t.a.ns,
          to: t.b.ns,
          address: family === 4 ? t.b.v4 : t.b.v6,
          count: UDP_COUNT,
          size: UDP_SIZE,
          timeoutMs: TRANSFER_TIMEOUT_MS,
          seed: family * 11 + (offload ? 1 : 0),
        });
        assert.equal(r.sent.sent, UDP_COUNT);
        assert.equal(r.received.corrupt, 0, 'corrupt datagrams');
        assert.equal(r.received.duplicates, 0, 'duplicate datagrams');
        assert.equal(r.received.missing, 0, 'missing datagrams');
        assert.equal(r.received.received, UDP_COUNT);
        assert.equal(r.received.bytes, UDP_COUNT * UDP_SIZE);
        const d = delta(before, fwd!.stats.aToB);
        assert.equal(d.drops, 0);
        const uso = family === 4 ? t.tunB.offload.uso4 : t.tunB.offload.uso6;
        if (offload && uso) {
          // GRO-U: equal-sized datagrams of one flow leave as UDP_L4 super-packets (DEV-3 step 3).
          assert.ok(d.written / d.writes > 1.5, `UDP packets per write ${(d.written / d.writes).toFixed(2)}`);
        } else {
          assert.equal(d.writes, d.written, 'no UDP coalescing without USO');
        }
        assert.equal(fwd!.error, undefined);
      });
    }

    test('TCP both ways at once, IPv4 A->B and IPv6 B->A, 32 MiB each: both directions independent', async () => {
      const t = topo!;
      const bytes = 32 << 20;
      const [ab, ba] = await Promise.all([
        tcpTransfer({ from: t.a.ns, to: t.b.ns, address: t.b.v4, bytes, timeoutMs: TRANSFER_TIMEOUT_MS, seed: 101 }),
        tcpTransfer({ from: t.b.ns, to: t.a.ns, address: t.a.v6, bytes, timeoutMs: TRANSFER_TIMEOUT_MS, seed: 202 }),
      ]);
      for (const r of [ab, ba]) {
        assert.equal(r.received.bytes, bytes);
        assert.equal(r.received.sha256, r.sent.sha256);
      }
      assert.notEqual(ab.sent.sha256, ba.sent.sha256);
      assert.ok(fwd!.stats.bToA.bytes >= bytes, 'the reverse direction carried its stream');
      assert.equal(fwd!.error, undefined);
    });
  });
}

// Other MTUs change the segment size (gso_size) and so the number of segments per
// super-packet: IPv6's minimum 1280 gives more, a 9000 jumbo MTU far fewer (RD-9, GRO-T5).
for (const mtu of [1280, 9000]) {
  describe(`forwarding with MTU ${mtu}, offload on`, { skip, timeout: 120_000 }, () => {
    let topo: TunTopology | undefined;
    let fwd: BridgeHandle | undefined;
    before(async () => {
      checkLabPrerequisites();
      topo = await createTunTopology({ offload: true, mtu });
      fwd = bridge(topo.tunA, topo.tunB);
    });
    after(async () => {
      const stopping = fwd?.stop();
      await topo?.remove();
      await stopping;
      await fwd?.done;
    });

    for (const family of [4, 6] as const) {
      test(`TCP over IPv${family}: 16 MiB intact, no segment larger than the MTU`, async () => {
        const t = topo!;
        const before = snapshot(fwd!.stats.aToB);
        const bytes = 16 << 20;
        const r = await tcpTransfer({ from: t.a.ns, to: t.b.ns, address: family === 4 ? t.b.v4 : t.b.v6, bytes, timeoutMs: TRANSFER_TIMEOUT_MS, seed: mtu + family });
        assert.equal(r.received.bytes, bytes);
        assert.equal(r.received.sha256, r.sent.sha256);
        const d = delta(before, fwd!.stats.aToB);
        assert.equal(d.drops, 0);
        // Average segment size: data packets are at most MTU bytes, so bytes/packets <= MTU.
        assert.ok(d.bytes / d.packets <= mtu, `average packet ${(d.bytes / d.packets).toFixed(0)} B exceeds MTU ${mtu}`);
        assert.ok(d.written / d.writes > 2, `packets per write ${(d.written / d.writes).toFixed(2)}`);
      });
    }
  });
}

describe('lab cleanup', { skip }, () => {
  test('no namespace of this process is left after the suites', () => {
    assert.deepEqual(liveNetns(), []);
    const listed = execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' });
    assert.doesNotMatch(listed, new RegExp(`^vt-${process.pid}-`, 'm'));
  });
});
