/**
 * One side of the UDP benchmark (src/bench/udp.ts), run inside a lab
 * namespace: `node udp-worker.js '<json UdpWorkerConfig>'`. Prints
 * `{"type":"ready","port"}` once bound (receivers), then one
 * `{"type":"result",...}` line. Bounded by `seconds` (senders) and an idle
 * limit (receivers).
 *
 * Both implementations do the same work per datagram: the sender sends
 * 1200-byte datagrams as fast as the API allows, the receiver counts them and
 * reads one byte of each (so neither side's data goes untouched).
 * vectun: `UdpSocket.send` with 256 datagrams a call (GSO) and `read()`
 * batches (GRO). dgram: a connected socket (its cheapest send path), one
 * `send` per datagram without a callback, its send queue kept bounded, one `'message'` per
 * datagram.
 * @module
 */
import * as dgram from 'node:dgram';
import { UdpSocket } from '../udp/socket.js';

/** What a worker does. */
export interface UdpWorkerConfig {
  role: 'send' | 'recv';
  impl: 'vectun' | 'dgram';
  family: 4 | 6;
  /** recv: address to bind; send: destination. */
  host: string;
  /** send: destination port. */
  port: number;
  /** Payload bytes per datagram. */
  size: number;
  /** send: how long to send. */
  seconds: number;
}

/** A side's outcome. */
export interface UdpWorkerResult {
  datagrams: number;
  bytes: number;
  /** recv: first to last datagram; send: first to last send. */
  elapsedMs: number;
  /** user + system CPU of this process over the same span. */
  cpuMs: number;
  /** recv (vectun): datagrams the kernel dropped (full receive buffer). */
  drops?: number;
}

const BATCH = 256;
const IDLE_MS = 400;
const BUFFER = 8 << 20;

function emit(message: object): void {
  process.stdout.write(JSON.stringify(message) + '\n');
}

function cpuMs(since: NodeJS.CpuUsage): number {
  const u = process.cpuUsage(since);
  return (u.user + u.system) / 1000;
}

async function receiveVectun(c: UdpWorkerConfig): Promise<UdpWorkerResult> {
  const sock = await UdpSocket.open({ address: c.host, receiveBufferSize: BUFFER });
  emit({ type: 'ready', port: sock.localAddress.port });
  let datagrams = 0;
  let bytes = 0;
  let touched = 0;
  let first = 0;
  let last = 0;
  let cpu: NodeJS.CpuUsage | undefined;
  let cpuAtLast = 0;
  for (;;) {
    let timer: NodeJS.Timeout | undefined;
    const batch = await Promise.race([
      sock.read(),
      new Promise<undefined>((resolve) => (timer = setTimeout(() => resolve(undefined), datagrams === 0 ? 30_000 : IDLE_MS))),
    ]).finally(() => clearTimeout(timer));
    if (batch === undefined) break;
    if (cpu === undefined) {
      // The span starts at the first batch, so that batch is not counted.
      cpu = process.cpuUsage();
      first = performance.now();
      last = first;
      continue;
    }
    for (const d of batch.datagrams) {
      touched += d[0]!;
      bytes += d.length;
    }
    datagrams += batch.datagrams.length;
    last = performance.now();
    cpuAtLast = cpuMs(cpu);
  }
  const drops = sock.stats.receiveDrops;
  await sock.close();
  void touched;
  return { datagrams, bytes, elapsedMs: last - first, cpuMs: cpuAtLast, drops };
}

function receiveDgram(c: UdpWorkerConfig): Promise<UdpWorkerResult> {
  return new Promise((resolve) => {
    const sock = dgram.createSocket({ type: c.family === 4 ? 'udp4' : 'udp6', recvBufferSize: BUFFER });
    let datagrams = 0;
    let bytes = 0;
    let touched = 0;
    let first = 0;
    let last = 0;
    let cpu: NodeJS.CpuUsage | undefined;
    let cpuAtLast = 0;
    // Counts as of `last` (sampled every 256 datagrams), so rate = counts / span exactly.
    let datagramsAtLast = 0;
    let bytesAtLast = 0;
    let idle: NodeJS.Timeout | undefined;
    const finish = (): void => {
      sock.close();
      void touched;
      resolve({ datagrams: datagramsAtLast, bytes: bytesAtLast, elapsedMs: last - first, cpuMs: cpuAtLast });
    };
    idle = setTimeout(finish, 30_000);
    // The idle check runs on a timer, not per datagram (a timer reset per message would cost more than the receive).
    const check = setInterval(() => {
      if (datagrams > 0 && performance.now() - last > IDLE_MS) {
        clearInterval(check);
        clearTimeout(idle);
        finish();
      }
    }, 100);
    sock.on('message', (msg) => {
      if (cpu === undefined) {
        cpu = process.cpuUsage();
        first = performance.now();
        clearTimeout(idle);
        idle = undefined;
        last = first;
        return; // the span starts here; this datagram is not counted
      }
      touched += msg[0]!;
      bytes += msg.length;
      datagrams++;
      if ((datagrams & 255) === 0) {
        last = performance.now();
        cpuAtLast = cpuMs(cpu);
        datagramsAtLast = datagrams;
        bytesAtLast = bytes;
      }
    });
    sock.bind(0, c.host, () => emit({ type: 'ready', port: sock.address().port }));
  });
}

async function sendVectun(c: UdpWorkerConfig): Promise<UdpWorkerResult> {
  const sock = await UdpSocket.open({ family: c.family, sendBufferSize: BUFFER });
  const dest = UdpSocket.endpoint(c.host, c.port);
  const block = new Uint8Array(BATCH * c.size).fill(0x5a);
  const datagrams = Array.from({ length: BATCH }, (_, i) => block.subarray(i * c.size, (i + 1) * c.size));
  // Warm-up: resolve the neighbour before timing.
  await sock.send([datagrams[0]!], dest);
  await new Promise((r) => setTimeout(r, 100));
  const cpu = process.cpuUsage();
  const start = performance.now();
  const end = start + c.seconds * 1000;
  let sent = 0;
  let bytes = 0;
  while (performance.now() < end) {
    const r = await sock.send(datagrams, dest);
    sent += r.datagrams;
    bytes += r.bytes;
  }
  const result = { datagrams: sent, bytes, elapsedMs: performance.now() - start, cpuMs: cpuMs(cpu) };
  await sock.close();
  return result;
}

function sendDgram(c: UdpWorkerConfig): Promise<UdpWorkerResult> {
  return new Promise((resolve, reject) => {
    const sock = dgram.createSocket({ type: c.family === 4 ? 'udp4' : 'udp6', sendBufferSize: BUFFER });
    const payload = Buffer.alloc(c.size, 0x5a);
    sock.on('error', reject);
    sock.connect(c.port, c.host, () => {
      sock.send(payload);
      setTimeout(() => {
        const cpu = process.cpuUsage();
        const start = performance.now();
        const end = start + c.seconds * 1000;
        let sent = 0;
        const finish = (): void => {
          const result = { datagrams: sent, bytes: sent * c.size, elapsedMs: performance.now() - start, cpuMs: cpuMs(cpu) };
          sock.close();
          resolve(result);
        };
        const pump = (): void => {
          if (performance.now() >= end) {
            // Let the queued sends drain before counting them as sent.
            if (sock.getSendQueueCount() === 0) finish();
            else setImmediate(pump);
            return;
          }
          // No callback per send (cheapest form); the queue Node keeps for sends it cannot write at once stays bounded.
          for (let i = 0; i < BATCH && sock.getSendQueueCount() < 1024; i++) {
            sock.send(payload);
            sent++;
          }
          setImmediate(pump);
        };
        pump();
      }, 100);
    });
  });
}

async function main(): Promise<void> {
  const c = JSON.parse(process.argv[2] ?? '{}') as UdpWorkerConfig;
  // A hard bound whatever happens.
  setTimeout(() => {
    emit({ type: 'error', message: 'udp bench worker did not finish in time' });
    process.exit(1);
  }, (c.seconds + 40) * 1000).unref();
  const result =
    c.role === 'recv'
      ? c.impl === 'vectun' ? await receiveVectun(c) : await receiveDgram(c)
      : c.impl === 'vectun' ? await sendVectun(c) : await sendDgram(c);
  emit({ type: 'result', result });
}

main().catch((err: unknown) => {
  emit({ type: 'error', message: err instanceof Error ? err.message : String(err) });
  process.exit(1);
});
