/**
 * UAPI parity with the reference: the same raw `set=1` / `get=1`
 * transactions sent to a real wireguard-go and to vectun's UAPI server (over
 * the in-memory control with wireguard-go's set semantics) must get the same
 * errno, and leave the same `get=1` state. wireguard-go runs in a namespace
 * with nothing but loopback, and every endpoint is a lab address.
 *
 * Needs root: skips with the reason when unprivileged, fails under `CI`.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { checkLabPrerequisites, createNetns, type Netns } from '../../src/lab/netns.js';
import { startWg, wgInterfaceName, type WgInstance } from '../../src/lab/wg.js';
import { generatePrivateKey, keyToHex, publicKeyOf } from '../../src/wg/crypto.js';
import { UapiServer, uapiRequest } from '../../src/wg/uapi-server.js';
import { FakeWgControl } from '../wg/fake-control.js';
import { e2eSkip } from './require-root.js';

const skip = e2eSkip();
const pub = (): string => keyToHex(publicKeyOf(generatePrivateKey()));
const P1 = pub();
const P2 = pub();
const PRIV = keyToHex(generatePrivateKey());
const PSK = keyToHex(generatePrivateKey());

/** Transactions that must fail, with the errno wireguard-go answers (asserted against it, not assumed). */
const FAILING: string[] = [
  'nonsense',
  'listen_port',
  '=1',
  'foo=bar',
  'private_key=abc',
  `private_key=${PRIV}0`,
  `private_key=${PRIV.slice(0, 62)}zz`,
  'listen_port=65536',
  'listen_port=-1',
  'listen_port=+1',
  'listen_port= 1',
  'listen_port=0x10',
  'fwmark=4294967296',
  'fwmark=abc',
  'replace_peers=false',
  'replace_peers=1',
  'allowed_ip=198.18.0.0/24',
  `public_key=${P1.slice(1)}`,
  `public_key=${P1}\nlisten_port=1`,
  `public_key=${P1}\nfoo=1`,
  `public_key=${P1}\nremove=false`,
  `public_key=${P1}\nupdate_only=yes`,
  `public_key=${P1}\npreshared_key=00`,
  `public_key=${P1}\nendpoint=198.18.0.1`,
  `public_key=${P1}\nendpoint=198.18.0.1:65536`,
  `public_key=${P1}\nendpoint=198.18.0.01:1`,
  `public_key=${P1}\nendpoint=[198.18.0.1]:1`,
  `public_key=${P1}\nendpoint=2001:2::1:1`,
  `public_key=${P1}\nendpoint=[2001:2::1]`,
  `public_key=${P1}\nendpoint=[1::2::3]:1`,
  `public_key=${P1}\nendpoint=lab.invalid:51820`,
  `public_key=${P1}\npersistent_keepalive_interval=65536`,
  `public_key=${P1}\npersistent_keepalive_interval=1.5`,
  `public_key=${P1}\nreplace_allowed_ips=1`,
  `public_key=${P1}\nallowed_ip=198.18.0.0/33`,
  `public_key=${P1}\nallowed_ip=198.18.0.0`,
  `public_key=${P1}\nallowed_ip=198.18.0.0/08`,
  `public_key=${P1}\nallowed_ip=2001:2::/129`,
  `public_key=${P1}\nallowed_ip=fe80::1%lo/64`,
  `public_key=${P1}\nprotocol_version=2`,
  `public_key=${P1}\nremove=true\nallowed_ip=198.18.0.0/99`,
];

/** Transactions that succeed, applied in this order to both; states compared after each. */
const SUCCEEDING: string[] = [
  'listen_port=51997', // wireguard-go starts on a random port
  '',
  `private_key=${PRIV}\nlisten_port=51999\nfwmark=7`,
  `public_key=${P1}\nprotocol_version=1\npreshared_key=${PSK}\nendpoint=198.18.1.1:51820\npersistent_keepalive_interval=0\nallowed_ip=198.18.20.7/24\nallowed_ip=2001:2:0:20::1/64`,
  `public_key=${P2}\nendpoint=[2001:2:0:2::1]:51822\nallowed_ip=198.18.21.0/24\nallowed_ip=2001:2:0:21:0:0:0:0/64`,
  `public_key=${P2}\nallowed_ip=198.18.20.0/24`,
  `public_key=${P1}\nreplace_allowed_ips=true\nallowed_ip=198.18.22.0/25`,
  `public_key=${P1}\npreshared_key=${'0'.repeat(64)}`,
  `public_key=${pub()}\nupdate_only=true\nallowed_ip=198.18.23.0/24`,
  `public_key=${P2}\nendpoint=[::ffff:198.18.1.1]:5`,
  `public_key=${P1}\nremove=true`,
  `listen_port=51998\npublic_key=${P1}\nallowed_ip=198.18.24.0/24\nbad_key=1`, // fails halfway: the lines before stay applied
  'fwmark=0\nreplace_peers=true',
];

/** `get=1` state as a comparable shape: device lines (private key as a boolean) and peer blocks sorted by key. */
function shape(body: string): { device: string[]; hasPrivateKey: string | null; peers: string[] } {
  const lines = body.trim() === '' ? [] : body.trim().split('\n');
  const device: string[] = [];
  const peers: string[][] = [];
  let privateKey: string | null = null;
  for (const line of lines) {
    if (line.startsWith('public_key=')) peers.push([line]);
    else if (peers.length > 0) peers[peers.length - 1]!.push(line);
    else if (line.startsWith('private_key=')) privateKey = line;
    else device.push(line);
  }
  return {
    device,
    // Compared, not printed: a mismatch message shows only whether they matched.
    hasPrivateKey: privateKey === null ? null : privateKey === `private_key=${PRIV}` ? 'the key set' : 'another key',
    peers: peers.map((p) => p.join('\n')).sort(),
  };
}

describe('UAPI parity: vectun\'s server answers like wireguard-go', { skip, timeout: 120_000 }, () => {
  let ns: Netns | undefined;
  let reference: WgInstance | undefined;
  let server: UapiServer | undefined;
  let dir = '';

  before(async () => {
    checkLabPrerequisites();
    ns = await createNetns('uapi');
    reference = await startWg('wireguard-go', ns, wgInterfaceName('p'));
    dir = mkdtempSync(join(tmpdir(), 'vt-uapi-parity-'));
    server = await UapiServer.listen({ interfaceName: 'vtparity0', control: new FakeWgControl(), directory: dir });
  });

  after(async () => {
    await server?.close();
    await reference?.stop();
    await ns?.remove();
    if (dir !== '') rmSync(dir, { recursive: true, force: true });
  });

  test('every failing set=1 gets the errno wireguard-go gives (EPROTO, EINVAL)', async () => {
    const mismatches: string[] = [];
    for (const body of FAILING) {
      const request = `set=1\n${body}\n\n`;
      const theirs = await uapiRequest(reference!.socketPath, request);
      const ours = await uapiRequest(server!.path, request);
      assert.notEqual(theirs.errno, 0, `wireguard-go rejects ${JSON.stringify(body)}`);
      if (ours.errno !== theirs.errno) mismatches.push(`${JSON.stringify(body)}: wireguard-go ${theirs.errno}, vectun ${ours.errno}`);
    }
    assert.deepEqual(mismatches, []);
  });

  test('succeeding transactions in sequence: same errno and the same get=1 state after each', async () => {
    for (const body of SUCCEEDING) {
      const request = body === '' ? 'set=1\n\n' : `set=1\n${body}\n\n`;
      const theirs = await uapiRequest(reference!.socketPath, request);
      const ours = await uapiRequest(server!.path, request);
      assert.equal(ours.errno, theirs.errno, `errno for ${JSON.stringify(body)}`);
      const theirState = shape((await uapiRequest(reference!.socketPath, 'get=1\n\n')).body);
      const ourState = shape((await uapiRequest(server!.path, 'get=1\n\n')).body);
      assert.deepEqual(ourState, theirState, `state after ${JSON.stringify(body.split('\n')[0])}`);
    }
  });

  test('get=1 with a trailing byte: EINVAL from both', async () => {
    const theirs = await uapiRequest(reference!.socketPath, 'get=1\nx');
    const ours = await uapiRequest(server!.path, 'get=1\nx');
    assert.equal(theirs.errno, 22);
    assert.equal(ours.errno, theirs.errno);
  });
});
