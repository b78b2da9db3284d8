/**
 * Interoperability: `vectun wg` against wireguard-go (the reference, built
 * from Debian's source) over a veth, each side as initiator, and vectun on
 * both sides; everything configured with the stock `wg`. Handshake (Noise
 * IKpsk2, whitepaper §5.4), then sha256-verified TCP and per-datagram-verified
 * UDP through the tunnel over IPv4 and IPv6, both directions.
 *
 * Needs root: skips with the reason when unprivileged, fails under `CI`.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { checkLabPrerequisites } from '../../src/lab/netns.js';
import { createWgTopology, ensureWgTools, type WgImplementation, type WgTopology } from '../../src/lab/wg.js';
import { e2eSkip } from './require-root.js';
import { interopTests } from './wg-scenarios.js';

const skip = e2eSkip();

const PAIRS: Array<{ a: WgImplementation; b: WgImplementation; initiator: 'a' | 'b'; underlay: 4 | 6; psk: boolean }> = [
  { a: 'vectun', b: 'wireguard-go', initiator: 'a', underlay: 4, psk: false },
  { a: 'vectun', b: 'wireguard-go', initiator: 'b', underlay: 6, psk: true },
  { a: 'vectun', b: 'vectun', initiator: 'a', underlay: 4, psk: true },
];

for (const p of PAIRS) {
  const label = `${p.a}(A) ↔ ${p.b}(B), ${p.initiator === 'a' ? 'A' : 'B'} initiates, IPv${p.underlay} underlay${p.psk ? ', preshared key' : ''}`;
  describe(label, { skip, timeout: 300_000 }, () => {
    let topo: WgTopology | undefined;

    before(async () => {
      checkLabPrerequisites();
      await ensureWgTools();
      topo = await createWgTopology({ a: p.a, b: p.b, initiator: p.initiator, underlay: p.underlay, presharedKey: p.psk });
    });

    after(async () => {
      const sockets = topo === undefined ? [] : [topo.a.instance.socketPath, topo.b.instance.socketPath];
      await topo?.remove();
      for (const s of sockets) assert.equal(existsSync(s), false, `${s} removed`);
    });

    interopTests(label, () => topo!, p.initiator);

    test('both processes still run after the traffic', () => {
      assert.equal(topo!.a.instance.child.exitCode, null, topo!.a.instance.stderr());
      assert.equal(topo!.b.instance.child.exitCode, null, topo!.b.instance.stderr());
    });
  });
}
