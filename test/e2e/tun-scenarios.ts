/**
 * Real-device scenarios for test/e2e/tun.test.ts. Each runs in a child process
 * started inside a network namespace the test created (`ip netns exec`), so
 * every TUN device it opens lives in that namespace. Prints one JSON line of
 * observed facts; the parent asserts on them. Exits non-zero on any failure.
 * Every wait is bounded by a timer; every traffic loop by a packet count.
 *
 * Usage: node tun-scenarios.js <scenario> [arg]
 */
import { execFileSync } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { connect } from 'node:net';
import { readdirSync, statSync } from 'node:fs';
import { Worker } from 'node:worker_threads';
import { Tun } from '../../src/device/tun.js';
import { loadBinding } from '../../src/device/native.js';
import { VectunError } from '../../src/errors.js';
import { parseIPv4, parseIPv6 } from '../../src/net/ip.js';
import { transportChecksumValid } from '../../src/core/checksum.js';
import { buildPacket, zeroChecksumUdpPayload } from '../core/packets.js';
import { within } from './within.js';

const LOCAL = [198, 18, 0, 1];
const PEER = [198, 18, 1, 2];
const TCP_SYN = 0x02;
const TCP_ACK = 0x10;

function once(tun: Tun, event: string, ms: number): Promise<unknown> {
  return within(ms, `'${event}' event`, new Promise((resolve) => tun.once(event, resolve)));
}

/** Reads (the kernel's own IPv6 packets may arrive) until a read fails; at most 1000 batches. */
async function readUntilError(tun: Tun): Promise<unknown> {
  for (let i = 0; i < 1000; i++) {
    try {
      await tun.read();
    } catch (err) {
      return err;
    }
  }
  return 'no error after 1000 batches';
}

function errorCode(err: unknown): string {
  return err instanceof VectunError ? err.code : String(err);
}

/** A device with 198.18.0.1/24 and a route to 198.18.1.0/24 through it, up. */
async function openLinked(options: Parameters<typeof Tun.open>[0] = {}): Promise<Tun> {
  const tun = await Tun.open({ name: 'vtun%d', ...options });
  await tun.addAddress('198.18.0.1/24');
  await tun.addAddress('2001:2::1/64');
  await tun.setUp(true);
  await tun.addRoute('198.18.1.0/24'); // routes need the link up (ENETDOWN)
  await tun.addRoute('2001:2:0:1::/64');
  return tun;
}

const ip4 = (p: Uint8Array): { proto: number; src: string; dst: string } => ({
  proto: p[9]!,
  src: p.subarray(12, 16).join('.'),
  dst: p.subarray(16, 20).join('.'),
});

/** ethtool -k, as name -> on/off. */
function ethtoolFeatures(name: string): Record<string, boolean> | null {
  try {
    const out = execFileSync('ethtool', ['-k', name], { encoding: 'utf8', timeout: 5000 });
    const features: Record<string, boolean> = {};
    for (const line of out.split('\n')) {
      const m = /^\s*([\w-]+): (on|off)/.exec(line);
      if (m) features[m[1]!] = m[2] === 'on';
    }
    return features;
  } catch {
    return null;
  }
}

/**
 * Answers the kernel's TCP SYN (to PEER:5000) with a SYN-ACK (MSS 1460), then
 * reads what the client sends: with TSO the first flight arrives as
 * super-packets (split by the read path into segments <= MTU).
 */
async function tcpFlight(tun: Tun): Promise<{ maxSegment: number; bytes: number; superPackets: number; segments: number }> {
  const client = connect({ host: PEER.join('.'), port: 5000, localAddress: LOCAL.join('.') });
  client.on('error', () => undefined);
  let maxSegment = 0;
  let bytes = 0;
  try {
    let answered = false;
    const deadline = Date.now() + 5000;
    while (bytes < 64 * 1024 && Date.now() < deadline) {
      const batch = await within(3000, 'TCP packets from the client', tun.read());
      for (const p of batch) {
        if (p[0]! >> 4 !== 4 || ip4(p).proto !== 6 || ip4(p).dst !== PEER.join('.')) continue;
        const tcpAt = (p[0]! & 0xf) * 4;
        const dv = new DataView(p.buffer, p.byteOffset, p.byteLength);
        const flags = p[tcpAt + 13]!;
        if ((flags & TCP_SYN) !== 0 && !answered) {
          answered = true;
          const synAck = buildPacket({
            version: 4, proto: 'tcp', src: PEER, dst: LOCAL, srcPort: 5000, dstPort: dv.getUint16(tcpAt),
            payload: 0, seq: 1000, ack: (dv.getUint32(tcpAt + 4) + 1) >>> 0, flags: TCP_SYN | TCP_ACK, window: 65535,
            options: Uint8Array.from([2, 4, 0x05, 0xb4]),
          });
          const r = await tun.write([synAck]);
          if (r.packets !== 1) throw new Error(`SYN-ACK not accepted: ${JSON.stringify(r.failures.map((f) => f.error.message))}`);
          // Enough data for a full initial window (10 segments).
          client.write(Buffer.alloc(60 * 1024, 0x61));
          continue;
        }
        const payload = p.length - tcpAt - (p[tcpAt + 12]! >> 4) * 4;
        if (payload > 0) {
          maxSegment = Math.max(maxSegment, p.length);
          bytes += payload;
        }
      }
      // The first flight is all we need: no ACKs are sent, so the client stops.
      if (bytes >= 14600) break;
    }
  } finally {
    client.destroy();
  }
  const s = tun.stats;
  return { maxSegment, bytes, superPackets: s.superPackets, segments: s.segments };
}

/** What the zero-udp-checksum scenario observed for one offload mode and family. */
interface ZeroChecksumRun { checksum: number; valid: boolean; payloadIntact: boolean; completesToZero: boolean }

const scenarios: Record<string, (arg?: string) => Promise<unknown>> = {
  /** D-8/style rule 2: tun.offload matches the device's features and behaviour. */
  async offload() {
    const result: Record<string, unknown> = {};
    for (const mode of [true, false] as const) {
      const tun = await openLinked({ offload: mode });
      try {
        const flight = await tcpFlight(tun);
        result[String(mode)] = { offload: { ...tun.offload }, features: ethtoolFeatures(tun.name), flight, mtu: tun.mtu };
      } finally {
        await tun.close();
      }
    }
    return result;
  },

  /**
   * RD-7 at the device: a datagram whose UDP checksum completes to 0 is read
   * with 0xFFFF, as the kernel stores it without offload (D-4's rule; 0 is
   * "no checksum" over IPv4 and dropped over IPv6). Per offload mode and
   * family: the checksum field read, whether it verifies, the payload intact.
   */
  async 'zero-udp-checksum'() {
    const result: Record<string, Record<string, ZeroChecksumRun>> = {};
    for (const mode of [true, false] as const) {
      const tun = await openLinked({ offload: mode });
      const runs: Record<string, ZeroChecksumRun> = {};
      try {
        for (const [family, local, peer] of [[4, LOCAL.join('.'), PEER.join('.')], [6, '2001:2::1', '2001:2:0:1::2']] as const) {
          const sock = createSocket(family === 4 ? 'udp4' : 'udp6');
          try {
            await new Promise<void>((r) => sock.bind(0, local, r));
            const port = sock.address().port;
            const addr = (text: string): Uint8Array => (family === 4 ? parseIPv4(text) : parseIPv6(text))!;
            const payload = zeroChecksumUdpPayload(family, addr(local), addr(peer), port, 9, 64);
            const probe = buildPacket({ version: family, proto: 'udp', src: Array.from(addr(local)), dst: Array.from(addr(peer)), srcPort: port, dstPort: 9, payload });
            const iph = family === 4 ? 20 : 40;
            const completesToZero = probe[iph + 6] === 0 && probe[iph + 7] === 0;
            sock.send(payload, 9, peer);
            let found: Uint8Array | undefined;
            for (let i = 0; i < 100 && found === undefined; i++) {
              for (const p of await tun.read()) {
                const udp = p[0]! >> 4 === family && (family === 4 ? p[9] : p[6]) === 17 && p.length === iph + 8 + 64;
                if (udp && ((p[iph + 2]! << 8) | p[iph + 3]!) === 9) found = p.slice();
              }
            }
            if (found === undefined) throw new Error(`IPv${family}: the datagram was not read in 100 batches`);
            runs[`v${family}`] = {
              checksum: (found[iph + 6]! << 8) | found[iph + 7]!,
              valid: transportChecksumValid(found, iph, 17),
              payloadIntact: Buffer.from(found.subarray(iph + 8)).equals(payload),
              completesToZero,
            };
          } finally {
            sock.close();
          }
        }
      } finally {
        await tun.close();
      }
      result[String(mode)] = runs;
    }
    return result;
  },

  /** MTU changed from outside while packets flow: 'mtu' event, reads go on. */
  async mtu() {
    const tun = await openLinked();
    const sock = createSocket('udp4');
    await new Promise<void>((r) => sock.bind(0, LOCAL.join('.'), r));
    let sent = 0;
    let read = 0;
    let readAfter = 0;
    let changed = false;
    const sender = setInterval(() => {
      for (let i = 0; i < 20 && sent < 4000; i++, sent++) sock.send(Buffer.alloc(200), 9, PEER.join('.'));
    }, 2);
    tun.on('packets', (batch: Uint8Array[]) => {
      read += batch.length;
      if (changed) readAfter += batch.length;
    });
    try {
      const event = once(tun, 'mtu', 3000);
      await new Promise((r) => setTimeout(r, 50));
      execFileSync('ip', ['link', 'set', 'dev', tun.name, 'mtu', '1400'], { timeout: 5000 });
      const mtu = await event;
      changed = true;
      await new Promise((r) => setTimeout(r, 100));
      return { mtu, tunMtu: tun.mtu, read, readAfter, sent };
    } finally {
      clearInterval(sender);
      sock.close();
      await tun.close();
    }
  },

  /** The device deleted from outside while a read waits: 'removed' and a typed error, no hang. */
  async removed() {
    const tun = await openLinked();
    const removed = once(tun, 'removed', 3000);
    const pending = readUntilError(tun);
    await new Promise((r) => setTimeout(r, 50));
    execFileSync('ip', ['link', 'del', 'dev', tun.name], { timeout: 5000 });
    await removed;
    const err = await within(3000, 'pending read to settle', pending);
    const later = await tun.read().then(() => 'resolved', errorCode);
    const writeLater = await tun.write([new Uint8Array(20)]).then(() => 'resolved', errorCode);
    await tun.close();
    return {
      pendingCode: errorCode(err),
      pendingErrno: err instanceof VectunError ? err.errno : undefined,
      later,
      writeLater,
    };
  },

  /** Moved to another namespace: 'moved'; the descriptor keeps working there. */
  async moved(target?: string) {
    if (target === undefined) throw new Error('moved needs the target namespace');
    const tun = await openLinked();
    const name = tun.name;
    const moved = once(tun, 'moved', 3000);
    const first = tun.read();
    execFileSync('ip', ['link', 'set', 'dev', name, 'netns', target], { timeout: 5000 });
    await moved;
    // The pending read is served by traffic from the new namespace.
    const inTarget = (args: string[]): void => void execFileSync('ip', ['-n', target, ...args], { timeout: 5000 });
    inTarget(['addr', 'add', '198.18.2.1/24', 'dev', name]);
    inTarget(['link', 'set', 'dev', name, 'up']);
    inTarget(['route', 'add', '198.18.3.0/24', 'dev', name]);
    const send = "require('node:dgram').createSocket('udp4').send(Buffer.alloc(5), 9, '198.18.3.3', () => process.exit(0))";
    execFileSync('ip', ['netns', 'exec', target, process.execPath, '-e', send], { timeout: 5000 });
    const isProbe = (p: Uint8Array): boolean => p[0]! >> 4 === 4 && ip4(p).proto === 17 && ip4(p).dst === '198.18.3.3';
    let found = (await within(3000, 'read after the move', first)).some(isProbe);
    for (let i = 0; i < 20 && !found; i++) found = (await within(3000, 'read after the move', tun.read())).some(isProbe);
    const stillAttached = tun.closed === false;
    await tun.close();
    let leftInTarget = true;
    try {
      inTarget(['link', 'show', 'dev', name]);
    } catch {
      leftInTarget = false;
    }
    return { found, stillAttached, leftInTarget };
  },

  /**
   * Moved and followed (TUNGETDEVNETNS): link control from the API is seen by
   * `ip -n <target>`, changes made there arrive as events, moving back is
   * followed too, and deletion while moved gives 'removed'.
   */
  async follow(target?: string) {
    if (target === undefined) throw new Error('follow needs the target namespace');
    const home = execFileSync('ip', ['netns', 'identify'], { encoding: 'utf8', timeout: 5000 }).trim();
    const tun = await openLinked({ queues: 2 });
    const name = tun.name;
    const seen: unknown[] = [];
    for (const e of ['mtu', 'up', 'down', 'removed']) tun.on(e, (v?: unknown) => seen.push(v === undefined ? e : [e, v]));
    const link = (ns: string | undefined): { ifindex: number; mtu: number; flags: string[] } => {
      const args = [...(ns === undefined ? [] : ['-n', ns]), '-j', 'link', 'show', 'dev', name];
      return (JSON.parse(execFileSync('ip', args, { encoding: 'utf8', timeout: 5000 })) as { ifindex: number; mtu: number; flags: string[] }[])[0]!;
    };
    const addrs = (ns: string): string[] => {
      const out = execFileSync('ip', ['-n', ns, '-j', 'addr', 'show', 'dev', name], { encoding: 'utf8', timeout: 5000 });
      return (JSON.parse(out) as { addr_info: { local: string; prefixlen: number }[] }[])[0]!.addr_info.map((a) => `${a.local}/${a.prefixlen}`);
    };
    const inTarget = (args: string[]): void => void execFileSync('ip', ['-n', target, ...args], { timeout: 5000 });
    const nextEvent = (event: string): Promise<unknown> => once(tun, event, 3000);
    try {
      let moved = nextEvent('moved');
      execFileSync('ip', ['link', 'set', 'dev', name, 'netns', target], { timeout: 5000 });
      const to = (await moved) as Record<string, unknown>;
      const there = link(target);
      // nlOpen switched this thread into the target namespace and must have switched it back.
      const threadBack = statSync('/proc/thread-self/ns/net').ino === statSync(`/run/netns/${home}`).ino;
      const afterMove = { ifindex: tun.ifindex, isUp: tun.isUp, ipIfindex: there.ifindex, threadBack };
      // From the API, seen by ip -n target.
      await tun.setMtu(1400);
      await tun.addAddress('198.18.4.1/24');
      await tun.setUp(true);
      const apiUp = link(target);
      const apiAddrs = addrs(target);
      await tun.setUp(false);
      const apiDown = link(target);
      // A queue adopted after the move (as a worker would): its Tun finds the device where it is.
      const adopted = await Tun.fromFd(tun.queue(1).fd);
      await adopted.setMtu(1450);
      const fromFd = { ifindex: adopted.ifindex, mtu: link(target).mtu };
      await adopted.close();
      // From ip -n target, seen as events.
      seen.length = 0;
      let ev = nextEvent('mtu');
      inTarget(['link', 'set', 'dev', name, 'mtu', '1300']);
      await ev;
      ev = nextEvent('up');
      inTarget(['link', 'set', 'dev', name, 'up']);
      await ev;
      ev = nextEvent('down');
      inTarget(['link', 'set', 'dev', name, 'down']);
      await ev;
      const ipEvents = [...seen];
      const state = { mtu: tun.mtu, isUp: tun.isUp };
      // Back home.
      moved = nextEvent('moved');
      inTarget(['link', 'set', 'dev', name, 'netns', home]);
      const back = (await moved) as Record<string, unknown>;
      await tun.setMtu(1280);
      const homeLink = link(undefined);
      // Moved again, then deleted there.
      moved = nextEvent('moved');
      execFileSync('ip', ['link', 'set', 'dev', name, 'netns', target], { timeout: 5000 });
      await moved;
      const removed = nextEvent('removed');
      inTarget(['link', 'del', 'dev', name]);
      await removed;
      const afterRemoval = await tun.setMtu(1500).then(() => 'resolved', errorCode);
      return {
        home, to, afterMove, apiUp, apiAddrs, apiDown, fromFd, ipEvents, state, back,
        homeLink: { mtu: homeLink.mtu, ifindex: homeLink.ifindex, tunIfindex: tun.ifindex }, afterRemoval,
      };
    } finally {
      await tun.close();
    }
  },

  /** close() while a read waits and a write is issued: typed rejection, device gone. */
  async close() {
    const tun = await openLinked();
    const name = tun.name;
    const read = readUntilError(tun).then(errorCode);
    const write = tun.write([buildPacket({ version: 4, proto: 'udp', src: PEER, dst: LOCAL, payload: 10 })]);
    const closing = tun.close();
    const writeResult = await write.then((r) => `packets ${r.packets}`, errorCode);
    await closing;
    const readResult = await within(2000, 'read after close', read);
    let stillThere = true;
    try {
      execFileSync('ip', ['link', 'show', 'dev', name], { stdio: 'ignore', timeout: 5000 });
    } catch {
      stillThere = false;
    }
    return { readResult, writeResult, stillThere, afterClose: await tun.read().then(() => 'resolved', errorCode) };
  },

  /** 1000 open/close cycles leave no descriptor behind. */
  async fds() {
    const count = (): number => readdirSync('/proc/self/fd').length;
    // One cycle first, so lazily opened process-wide descriptors are not counted.
    await (await Tun.open({ name: 'vtfd%d' })).close();
    const before = count();
    const t0 = Date.now();
    for (let i = 0; i < 1000; i++) {
      const tun = await Tun.open({ name: 'vtfd%d', queues: i % 2 === 0 ? 1 : 2 });
      await tun.close();
    }
    const ms = Date.now() - t0;
    await new Promise((r) => setImmediate(r));
    const links = execFileSync('ip', ['-o', 'link', 'show'], { encoding: 'utf8' }).split('\n').filter((l) => l.includes('vtfd')).length;
    return { before, after: count(), ms, links };
  },

  /** Malformed frames: errors or drops, and the device keeps working. */
  async malformed() {
    const tun = await openLinked({ queues: 2 });
    const sock = createSocket('udp4');
    await new Promise<void>((r) => sock.bind(7777, LOCAL.join('.'), r));
    const received: number[] = [];
    sock.on('message', (m) => received.push(m.length));
    try {
      // Through the API: garbage, truncated IPv4, wrong version.
      const garbage = Uint8Array.from({ length: 100 }, (_, i) => (i * 37 + 11) & 0xff);
      const good = buildPacket({ version: 4, proto: 'udp', src: PEER, dst: LOCAL, dstPort: 7777, payload: 64 });
      const truncated = good.subarray(0, 30);
      const badVersion = Uint8Array.from(good);
      badVersion[0] = 0x75;
      const api = await tun.write([garbage, truncated, badVersion]);
      // Raw frames with bad virtio headers, on the second queue's descriptor.
      const q = tun.queue(1);
      const b = loadBinding();
      const hdr = (bytes: number[]): Uint8Array => Uint8Array.from([...bytes, ...new Array<number>(10 - bytes.length).fill(0)]);
      const frames: Uint8Array[][] = [
        [hdr([0, 0x33]), good], // unknown gso type
        [hdr([1, 1, 40, 0, 0, 0, 0xff, 0xff, 16, 0]), good], // csum_start far beyond the packet
        [hdr([0, 1, 0xff, 0xff, 100, 0, 20, 0, 16, 0]), good], // TCPV4 announced on a UDP packet, hdr_len 65535
        [hdr([0, 0])], // header only
      ];
      const results = new Int32Array(frames.length);
      b.writeLists(q.fd, frames, 0, results);
      b.close(q.fd);
      // Still working: a valid packet is delivered to the socket, and a packet from the socket is read.
      const after = await tun.write([good]);
      const deadline = Date.now() + 2000;
      while (received.length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
      sock.send(Buffer.alloc(33), 9, PEER.join('.'));
      let readBack = 0;
      while (readBack === 0 && Date.now() < deadline + 2000) {
        const batch = await within(2000, 'read after malformed frames', tun.read());
        readBack = batch.filter((p) => p[0]! >> 4 === 4 && ip4(p).proto === 17 && p.length === 20 + 8 + 33).length;
      }
      return {
        api: { packets: api.packets, failures: api.failures.map((f) => [f.index, f.error.code, f.error.errno ?? null]) },
        raw: Array.from(results),
        after: after.packets,
        received,
        readBack,
      };
    } finally {
      sock.close();
      await tun.close();
    }
  },

  /** persist: the device outlives close(); reopened by name and made non-persistent, it goes with the last close. */
  async persist() {
    const first = await Tun.open({ name: 'vtpers0', persist: true });
    await first.close();
    const exists = (): boolean => {
      try {
        execFileSync('ip', ['link', 'show', 'dev', 'vtpers0'], { stdio: 'ignore', timeout: 5000 });
        return true;
      } catch {
        return false;
      }
    };
    const afterPersistentClose = exists();
    const again = await Tun.open({ name: 'vtpers0', persist: false });
    const reopenedIfindex = again.ifindex === first.ifindex;
    await again.close();
    return { afterPersistentClose, reopenedIfindex, afterLastClose: exists() };
  },

  /** A queue descriptor handed to a worker thread, adopted with Tun.fromFd. */
  async worker() {
    const tun = await openLinked({ queues: 2 });
    try {
      const q = tun.queue(1);
      const code = `
        const { parentPort, workerData } = require('node:worker_threads');
        const { Tun } = require(workerData.module);
        (async () => {
          const t = await Tun.fromFd(workerData.fd);
          const info = { name: t.name, offload: { ...t.offload }, mtu: t.mtu };
          await t.close();
          parentPort.postMessage(info);
        })().catch((e) => parentPort.postMessage({ error: String(e) }));`;
      const worker = new Worker(code, { eval: true, workerData: { fd: q.fd, module: require.resolve('../../src/device/tun.js') } });
      const info = await within(5000, 'worker', new Promise((resolve, reject) => {
        worker.once('message', resolve);
        worker.once('error', reject);
      }));
      await worker.terminate();
      return { name: tun.name, worker: info };
    } finally {
      await tun.close();
    }
  },
};

async function main(): Promise<void> {
  const [name, arg] = process.argv.slice(2);
  const run = name === undefined ? undefined : scenarios[name];
  if (run === undefined) throw new Error(`unknown scenario ${String(name)}; one of ${Object.keys(scenarios).join(', ')}`);
  const result = await within(60_000, name!, run(arg));
  process.stdout.write(`${JSON.stringify(result)}\n`);
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    process.stderr.write(`${err instanceof Error ? err.stack ?? err.message : String(err)}\n`);
    process.exit(1);
  },
);
