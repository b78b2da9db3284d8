/**
 * One side of a lab transfer, run inside a namespace by `traffic.ts`:
 * `ip netns exec <ns> node traffic-worker.js '<json WorkerConfig>'`.
 *
 * Talks to the parent in JSON lines on stdout ({@link WorkerMessage}):
 * `ready` (listening, with the port), `progress` (periodic), then one
 * `result` or `error`. Every mode is bounded by `timeoutMs` and by bytes or
 * datagram counts; the process exits when its job ends.
 *
 * TCP: the sender streams deterministic pseudo-random bytes from a seed; both
 * sides hash what they sent / received with sha256. UDP: datagram i carries
 * its index, body length and the first 8 bytes of sha256(body); the body is a
 * function of (seed, i), so the receiver checks every byte, counts missing,
 * duplicate and corrupt datagrams, and acks counts back so the sender keeps a
 * bounded window in flight (a window, not a rate, so loss is not induced).
 * @module
 */
import { createHash } from 'node:crypto';
import * as dgram from 'node:dgram';
import * as net from 'node:net';
import type { BaseWorkerMessage } from './worker-process.js';

/** What a worker does; passed as JSON in argv[2]. */
export type WorkerConfig =
  | { mode: 'tcp-recv'; host: string; port: number; maxBytes: number; timeoutMs: number; progressMs: number }
  | {
      mode: 'tcp-send';
      host: string;
      port: number;
      bytes: number;
      /** Stop earlier once this many seconds have passed (throughput runs). */
      seconds?: number;
      seed: number;
      timeoutMs: number;
      progressMs: number;
    }
  | { mode: 'udp-recv'; host: string; port: number; count: number; seed: number; timeoutMs: number; idleMs: number }
  | { mode: 'udp-send'; host: string; port: number; count: number; size: number; seed: number; window: number; timeoutMs: number };

/** Lines a worker prints. */
export type WorkerMessage =
  | BaseWorkerMessage<TcpSideResult | UdpReceiveResult | UdpSendResult>
  | { type: 'progress'; bytes: number; elapsedMs: number };

/** One side of a TCP transfer. */
export interface TcpSideResult {
  bytes: number;
  sha256: string;
  /** Receiver: first byte to end of stream; sender: connect to close. */
  elapsedMs: number;
}

/** What the UDP receiver saw. */
export interface UdpReceiveResult {
  received: number;
  bytes: number;
  missing: number;
  duplicates: number;
  /** Datagrams whose checksum, length or body did not match. */
  corrupt: number;
  elapsedMs: number;
}

/** What the UDP sender did. */
export interface UdpSendResult {
  sent: number;
  bytes: number;
  /** Times the sender gave up waiting for an ack and sent past its window. */
  windowTimeouts: number;
  elapsedMs: number;
}

/** Bytes in the UDP datagram header: index u32, body length u32, checksum 8. */
export const UDP_HEADER = 16;
const POOL_BYTES = 4 << 20;
const CHUNK = 64 << 10;

/** Deterministic pseudo-random bytes (xorshift32) from a seed. */
export function fillPseudoRandom(out: Uint8Array, seed: number): void {
  let x = (seed | 0) === 0 ? 0x9e3779b9 : seed | 0;
  const words = new Uint32Array(out.buffer, out.byteOffset, out.length >>> 2);
  for (let i = 0; i < words.length; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    words[i] = x >>> 0;
  }
  for (let i = words.length * 4; i < out.length; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = x & 0xff;
  }
}

/** The body of UDP datagram `index` (needs a 4-byte aligned `out`). */
export function udpBody(out: Uint8Array, seed: number, index: number): void {
  fillPseudoRandom(out, (seed ^ Math.imul(index + 1, 0x9e3779b1)) >>> 0);
}

function emit(message: WorkerMessage): void {
  process.stdout.write(JSON.stringify(message) + '\n');
}

function fail(message: string): never {
  emit({ type: 'error', message });
  process.exit(1);
}

function bound(timeoutMs: number, what: string): void {
  setTimeout(() => fail(`${what} did not finish within ${timeoutMs} ms`), timeoutMs).unref();
}

function tcpReceive(c: Extract<WorkerConfig, { mode: 'tcp-recv' }>): void {
  bound(c.timeoutMs, 'tcp receive');
  const hash = createHash('sha256');
  let bytes = 0;
  let first = 0;
  const server = net.createServer((socket) => {
    server.close(); // one connection per transfer
    const progress = setInterval(() => emit({ type: 'progress', bytes, elapsedMs: first ? performance.now() - first : 0 }), c.progressMs);
    socket.on('data', (chunk: Buffer) => {
      if (first === 0) first = performance.now();
      bytes += chunk.length;
      if (bytes > c.maxBytes) fail(`received more than ${c.maxBytes} bytes`);
      hash.update(chunk);
    });
    socket.on('end', () => {
      clearInterval(progress);
      const result: TcpSideResult = { bytes, sha256: hash.digest('hex'), elapsedMs: first ? performance.now() - first : 0 };
      emit({ type: 'result', result });
      socket.end(() => process.exit(0));
    });
    socket.on('error', (err) => fail(`tcp receive: ${err.message}`));
  });
  server.on('error', (err) => fail(`tcp listen: ${err.message}`));
  server.listen(c.port, c.host, () => emit({ type: 'ready', port: (server.address() as net.AddressInfo).port }));
}

function tcpSend(c: Extract<WorkerConfig, { mode: 'tcp-send' }>): void {
  bound(c.timeoutMs, 'tcp send');
  const pool = new Uint8Array(POOL_BYTES + CHUNK);
  fillPseudoRandom(pool, c.seed);
  const hash = createHash('sha256');
  const start = performance.now();
  const deadline = c.seconds === undefined ? Infinity : start + c.seconds * 1000;
  let sent = 0;
  let k = 0;
  const socket = net.connect({ host: c.host, port: c.port });
  const progress = setInterval(() => emit({ type: 'progress', bytes: sent, elapsedMs: performance.now() - start }), c.progressMs);
  const pump = (): void => {
    while (sent < c.bytes) {
      if (performance.now() >= deadline) break;
      // Chunk k starts at a pseudo-random pool offset: deterministic, not short-periodic.
      const off = (Math.imul(k++, 0x9e3779b1) >>> 0) % POOL_BYTES;
      const chunk = pool.subarray(off, off + Math.min(CHUNK, c.bytes - sent));
      hash.update(chunk);
      sent += chunk.length;
      if (!socket.write(chunk)) {
        socket.once('drain', pump);
        return;
      }
    }
    socket.end();
  };
  socket.on('connect', pump);
  socket.on('error', (err) => fail(`tcp send: ${err.message}`));
  socket.on('close', () => {
    clearInterval(progress);
    const result: TcpSideResult = { bytes: sent, sha256: hash.digest('hex'), elapsedMs: performance.now() - start };
    emit({ type: 'result', result });
    process.exit(0);
  });
}

function checksum8(body: Uint8Array): Buffer {
  return createHash('sha256').update(body).digest().subarray(0, 8);
}

function udpReceive(c: Extract<WorkerConfig, { mode: 'udp-recv' }>): void {
  bound(c.timeoutMs, 'udp receive');
  const socket = dgram.createSocket({ type: c.host.includes(':') ? 'udp6' : 'udp4' });
  const seen = new Uint8Array(c.count);
  const expected = new Uint8Array(65536);
  let received = 0;
  let bytes = 0;
  let duplicates = 0;
  let corrupt = 0;
  let first = 0;
  let idle: NodeJS.Timeout | undefined;
  let done = false;
  const ack = Buffer.alloc(4);
  const finish = (): void => {
    if (done) return;
    done = true;
    clearTimeout(idle);
    const result: UdpReceiveResult = {
      received,
      bytes,
      missing: c.count - received,
      duplicates,
      corrupt,
      elapsedMs: first ? performance.now() - first : 0,
    };
    emit({ type: 'result', result });
    socket.close(() => process.exit(0));
  };
  socket.on('message', (msg, rinfo) => {
    if (done) return;
    if (first === 0) first = performance.now();
    bytes += msg.length;
    const index = msg.length >= UDP_HEADER ? msg.readUInt32BE(0) : -1;
    const len = msg.length >= UDP_HEADER ? msg.readUInt32BE(4) : -1;
    const body = msg.subarray(UDP_HEADER);
    let ok = index >= 0 && index < c.count && len === body.length && checksum8(body).equals(msg.subarray(8, UDP_HEADER));
    if (ok) {
      const want = expected.subarray(0, (len + 3) & ~3);
      udpBody(want, c.seed, index);
      ok = Buffer.from(want.buffer, 0, len).equals(body);
    }
    if (!ok) corrupt++;
    else if (seen[index] === 1) duplicates++;
    else {
      seen[index] = 1;
      received++;
    }
    ack.writeUInt32BE(received + corrupt + duplicates);
    socket.send(ack, rinfo.port, rinfo.address);
    if (received === c.count) return finish();
    clearTimeout(idle);
    idle = setTimeout(finish, c.idleMs);
  });
  socket.on('error', (err) => fail(`udp receive: ${err.message}`));
  socket.bind(c.port, c.host, () => emit({ type: 'ready', port: socket.address().port }));
}

function udpSend(c: Extract<WorkerConfig, { mode: 'udp-send' }>): void {
  bound(c.timeoutMs, 'udp send');
  const socket = dgram.createSocket({ type: c.host.includes(':') ? 'udp6' : 'udp4' });
  const body = new Uint8Array((c.size + 3) & ~3);
  const start = performance.now();
  let sent = 0;
  let bytes = 0;
  let acked = 0;
  let windowTimeouts = 0;
  let stall: NodeJS.Timeout | undefined;
  const pump = (): void => {
    clearTimeout(stall);
    while (sent < c.count && sent - acked < c.window) {
      udpBody(body, c.seed, sent);
      const view = body.subarray(0, c.size);
      const msg = Buffer.alloc(UDP_HEADER + c.size);
      msg.writeUInt32BE(sent, 0);
      msg.writeUInt32BE(c.size, 4);
      checksum8(view).copy(msg, 8);
      msg.set(view, UDP_HEADER);
      socket.send(msg);
      bytes += msg.length;
      sent++;
    }
    if (sent === c.count) {
      const result: UdpSendResult = { sent, bytes, windowTimeouts, elapsedMs: performance.now() - start };
      emit({ type: 'result', result });
      // Stay a little for late acks so the receiver never sends to a closed port.
      setTimeout(() => socket.close(() => process.exit(0)), 200);
      return;
    }
    // A lost datagram or ack must not stall the run: slide the window after a pause.
    stall = setTimeout(() => {
      windowTimeouts++;
      acked = sent - c.window + 1;
      pump();
    }, 200);
  };
  socket.on('message', (msg) => {
    if (msg.length !== 4) return;
    const n = msg.readUInt32BE(0);
    if (n > acked) {
      acked = n;
      if (sent < c.count) pump();
    }
  });
  socket.on('error', (err) => fail(`udp send: ${err.message}`));
  socket.connect(c.port, c.host, pump);
}

function main(): void {
  let config: WorkerConfig;
  try {
    config = JSON.parse(process.argv[2] ?? '') as WorkerConfig;
  } catch {
    fail('usage: traffic-worker.js <json config>');
  }
  switch (config.mode) {
    case 'tcp-recv':
      return tcpReceive(config);
    case 'tcp-send':
      return tcpSend(config);
    case 'udp-recv':
      return udpReceive(config);
    case 'udp-send':
      return udpSend(config);
    default:
      fail(`unknown mode ${JSON.stringify((config as { mode: unknown }).mode)}`);
  }
}

if (require.main === module) main();
