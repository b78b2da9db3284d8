/**
 * The lab itself: address guard, veth baseline transfers (sha256 / datagram
 * checks), the time bound of a stalled transfer, and namespace cleanup when the
 * owning process throws, exits or is stopped by a signal.
 * Root suites skip with the reason when unprivileged and fail under `CI`.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { VectunError } from '../../src/errors.js';
import { assertLabAddress, checkLabPrerequisites } from '../../src/lab/netns.js';
import { createVethTopology, type Topology } from '../../src/lab/topology.js';
import { tcpTransfer, udpTransfer } from '../../src/lab/traffic.js';
import { e2eSkip } from './require-root.js';
import { isCode } from '../error-code.js';

const skip = e2eSkip();


test('lab addresses: only 198.18.0.0/15 and 2001:2::/48 are accepted', () => {
  for (const ok of ['198.18.0.1/24', '198.19.255.254', '198.18.0.0/15', '2001:2::1/64', '2001:2:0:ffff::1', '2001:2::/48']) {
    assert.doesNotThrow(() => assertLabAddress(ok), ok);
  }
  for (const bad of ['198.17.0.1/24', '198.20.0.1', '198.18.0.0/14', '10.0.0.1/8', '2001:3::1/64', '2001:2:1::1', '2001:2::/47', '::1', 'x']) {
    assert.throws(() => assertLabAddress(bad), isCode('ERR_INVALID_ARG'), bad);
  }
});

describe('veth baseline and transfer bounds', { skip, timeout: 120_000 }, () => {
  let topo: Topology | undefined;
  before(async () => {
    checkLabPrerequisites();
    topo = await createVethTopology();
  });
  after(async () => {
    await topo?.remove();
  });

  for (const family of [4, 6] as const) {
    test(`TCP over IPv${family}: 16 MiB with equal sha256 on both ends`, async () => {
      const t = topo!;
      const progress: number[] = [];
      const r = await tcpTransfer({
        from: t.a.ns,
        to: t.b.ns,
        address: family === 4 ? t.b.v4 : t.b.v6,
        bytes: 16 << 20,
        timeoutMs: 30_000,
        seed: family,
        onProgress: (p) => progress.push(p.bytes),
      });
      assert.equal(r.received.bytes, 16 << 20);
      assert.equal(r.received.sha256, r.sent.sha256);
      assert.match(r.sent.sha256, /^[0-9a-f]{64}$/);
      assert.equal(r.intact, true);
      assert.ok(r.gbitPerSecond > 0);
    });

    test(`UDP over IPv${family}: 5000 datagrams counted and checked`, async () => {
      const t = topo!;
      const r = await udpTransfer({ from: t.a.ns, to: t.b.ns, address: family === 4 ? t.b.v4 : t.b.v6, count: 5000, size: 1000, timeoutMs: 30_000 });
      assert.equal(r.received.received, 5000);
      assert.equal(r.received.bytes, 5000 * 1000);
      assert.equal(r.received.corrupt + r.received.duplicates + r.received.missing, 0);
      assert.equal(r.intact, true);
    });
  }

  test('different seeds give different streams (the hash covers the data)', async () => {
    const t = topo!;
    const o = { from: t.a.ns, to: t.b.ns, address: t.b.v4, bytes: 1 << 20, timeoutMs: 30_000 };
    const [x, y] = [await tcpTransfer({ ...o, seed: 1 }), await tcpTransfer({ ...o, seed: 2 })];
    assert.notEqual(x.received.sha256, y.received.sha256);
  });

  test('a stalled transfer ends with ERR_LAB_TIMEOUT within its bound', async () => {
    const t = topo!;
    await t.b.ns.setUp(t.b.dev, false); // the path now drops everything
    try {
      const start = Date.now();
      await assert.rejects(
        tcpTransfer({ from: t.a.ns, to: t.b.ns, address: t.b.v4, bytes: 1 << 20, timeoutMs: 1500 }),
        (e: unknown) => e instanceof VectunError && (e.code === 'ERR_LAB_TIMEOUT' || e.code === 'ERR_LAB_TRAFFIC'),
      );
      assert.ok(Date.now() - start < 10_000, 'bounded');
    } finally {
      await t.b.ns.setUp(t.b.dev, true);
    }
  });
});

describe('namespace cleanup by the owning process', { skip, timeout: 60_000 }, () => {
  const dir = mkdtempSync(join(tmpdir(), 'vectun-lab-'));
  const script = join(dir, 'owner.js');
  after(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(
    script,
    `const { createVethTopology } = require(${JSON.stringify(join(__dirname, '..', '..', 'src', 'lab', 'topology.js'))});
createVethTopology().then((t) => {
  console.log(t.a.ns.name + ' ' + t.b.ns.name);
  const how = process.argv[2];
  if (how === 'throw') throw new Error('owner failed');
  if (how === 'exit') process.exit(3);
  setInterval(() => {}, 1000);
});
`,
  );

  const listed = (): string => execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' });

  for (const how of ['throw', 'exit', 'SIGINT', 'SIGTERM'] as const) {
    test(`namespaces are removed when the owner ${how === 'throw' || how === 'exit' ? how + 's' : 'gets ' + how}`, async () => {
      const child = spawn(process.execPath, [script, how], { stdio: ['ignore', 'pipe', 'ignore'] });
      const names = await new Promise<string[]>((resolve, reject) => {
        child.stdout.once('data', (d: Buffer) => resolve(d.toString().trim().split(' ')));
        child.once('exit', () => reject(new Error('owner exited before creating namespaces')));
        setTimeout(() => reject(new Error('owner did not start')), 15_000).unref();
      }).catch((e: unknown) => {
        child.kill('SIGKILL');
        throw e;
      });
      assert.equal(names.length, 2);
      if (how === 'SIGINT' || how === 'SIGTERM') {
        assert.match(listed(), new RegExp(`^${names[0]}\\b`, 'm'), 'exists while the owner runs');
        child.kill(how);
      }
      const code = await new Promise<number | null>((resolve) => {
        if (child.exitCode !== null || child.signalCode !== null) resolve(child.exitCode);
        else child.once('exit', (c) => resolve(c));
      });
      if (how === 'exit') assert.equal(code, 3);
      const now = listed();
      for (const n of names) assert.doesNotMatch(now, new RegExp(`^${n}\\b`, 'm'), `${n} left behind`);
    });
  }
});
