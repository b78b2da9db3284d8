/**
 * The harness proven on the reference: wireguard-go on both sides of a veth,
 * configured with the stock `wg`, each side as initiator. If these fail, the
 * lab (install script, namespaces, `wg` plumbing) is broken, not vectun.
 *
 * Needs root: skips with the reason when unprivileged, fails under `CI`.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { checkLabPrerequisites } from '../../src/lab/netns.js';
import { createWgTopology, ensureWgTools, type WgTopology } from '../../src/lab/wg.js';
import { e2eSkip } from './require-root.js';
import { interopTests } from './wg-scenarios.js';

const skip = e2eSkip();

for (const initiator of ['a', 'b'] as const) {
  describe(`wireguard-go ↔ wireguard-go, ${initiator === 'a' ? 'A' : 'B'} initiates`, { skip, timeout: 300_000 }, () => {
    let topo: WgTopology | undefined;

    before(async () => {
      checkLabPrerequisites();
      await ensureWgTools();
      topo = await createWgTopology({ a: 'wireguard-go', b: 'wireguard-go', initiator });
    });

    after(async () => {
      const sockets = topo === undefined ? [] : [topo.a.instance.socketPath, topo.b.instance.socketPath];
      await topo?.remove();
      for (const s of sockets) assert.equal(existsSync(s), false, `${s} removed`);
    });

    interopTests('wg-go↔wg-go', () => topo!, initiator, 'dropped by the reference');

    test('both processes still run after the traffic', () => {
      assert.equal(topo!.a.instance.child.exitCode, null);
      assert.equal(topo!.b.instance.child.exitCode, null);
    });
  });
}
