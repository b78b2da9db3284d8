/**
 * Run by test/install/package.test.ts inside a network namespace the test
 * created: loads vectun from an installed copy (`<installDir>/node_modules/vectun`,
 * not this checkout), reports which addon file the process mapped, and in mode
 * `io` opens a Tun and reads and writes through it. Prints one JSON line.
 * Every wait is bounded; addresses are 198.18.0.0/15 only.
 *
 * Usage: node install-probe.js <installDir> load|io
 */
import { createSocket } from 'node:dgram';
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import type * as Vectun from '../../src/index.js';
import type * as Native from '../../src/device/native.js';
import { buildPacket } from '../core/packets.js';
import { within } from '../e2e/within.js';

const LOCAL = [198, 18, 0, 1];
const PEER = [198, 18, 1, 2];

/** The vectun addon files this process has mapped (what dlopen really loaded). */
function mappedAddons(): string[] {
  const maps = readFileSync('/proc/self/maps', 'utf8').split('\n');
  return [...new Set(maps.map((l) => l.split(/\s+/).slice(5).join(' ')).filter((f) => /vectun[^/]*\.node$/.test(f)))];
}

async function io(vectun: typeof Vectun): Promise<Record<string, unknown>> {
  const tun = await vectun.Tun.open({ name: 'vtinst%d' });
  const rx = createSocket('udp4');
  const tx = createSocket('udp4');
  try {
    await tun.addAddress('198.18.0.1/24');
    await tun.setUp(true);
    await tun.addRoute('198.18.1.0/24');
    // Read: a datagram the kernel routes into the device.
    tx.send(Buffer.from('to the tun'), 9, '198.18.1.2');
    const isProbe = (p: Uint8Array): boolean => p[0] === 0x45 && p[9] === 17 && p.subarray(16, 20).join('.') === '198.18.1.2';
    let read = false;
    for (let i = 0; i < 20 && !read; i++) read = (await within(3000, 'read from the installed Tun', tun.read())).some(isProbe);
    // Write: a datagram from the peer that the kernel delivers to a local socket.
    await new Promise<void>((resolve) => rx.bind(0, '198.18.0.1', resolve));
    const port = rx.address().port;
    const received = within(3000, 'datagram written through the installed Tun', new Promise<string>((resolve) => rx.once('message', (m) => resolve(m.toString()))));
    const packet = buildPacket({ version: 4, proto: 'udp', src: PEER, dst: LOCAL, srcPort: 4000, dstPort: port, payload: Buffer.from('from the tun') });
    const written = await tun.write([packet]);
    return { read, written: written.packets, received: await received, offload: tun.offload.vnetHdr };
  } finally {
    rx.close();
    tx.close();
    await tun.close();
  }
}

async function main(): Promise<void> {
  const [installDir, mode] = process.argv.slice(2);
  if (installDir === undefined || (mode !== 'load' && mode !== 'io')) throw new Error('usage: install-probe.js <installDir> load|io');
  const pkg = path.join(installDir, 'node_modules', 'vectun');
  let result: Record<string, unknown>;
  if (mode === 'load') {
    const native = require(path.join(pkg, 'dist', 'src', 'device', 'native.js')) as typeof Native;
    try {
      result = { exports: Object.keys(native.loadBinding()).sort() };
    } catch (err) {
      const e = err as { code?: string; message?: string };
      result = { code: e.code, message: e.message };
    }
  } else {
    result = await io(require(pkg) as typeof Vectun);
  }
  process.stdout.write(`${JSON.stringify({ ...result, addons: mappedAddons() })}\n`);
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    process.stderr.write(`${err instanceof Error ? err.stack ?? err.message : String(err)}\n`);
    process.exit(1);
  },
);
