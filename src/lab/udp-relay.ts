/**
 * A UDP relay between two WireGuard peers for the lab's injection tests,
 * run inside a namespace (`ip netns exec <ns> node udp-relay.js '<json>'`):
 * datagrams from peer X go to peer Y and back, so each peer sees the relay
 * as the other's endpoint. It keeps copies of the last transport messages
 * (type 4) X sent, and on command sends to Y, from the relay's own address
 * (the peer's endpoint, the most trusted source):
 *
 * - `replay`: recorded messages again, unchanged (an authenticated replay);
 * - `tamper`: recorded messages with one ciphertext bit flipped (wrong tag);
 * - `truncate`: recorded and handshake-typed messages cut below their size;
 * - `garbage`: pseudo-random datagrams, 1..1400 bytes, first byte 0..255.
 *
 * Commands are JSON lines on stdin (`{"cmd":"replay","count":8}`); each is
 * answered on stdout with `{"type":"done","cmd":...,"sent":n}`. Bounded: it
 * exits after `timeoutMs`, on stdin end, or when the parent goes.
 * @module
 */
import * as dgram from 'node:dgram';
import { createInterface } from 'node:readline';

/** The relay's configuration (argv[2], JSON). */
export interface RelayConfig {
  /** Address and port the relay listens on (a lab address). */
  listen: { address: string; port: number };
  x: { address: string; port: number };
  y: { address: string; port: number };
  timeoutMs: number;
}

/** A command on stdin. */
export interface RelayCommand {
  cmd: 'replay' | 'tamper' | 'truncate' | 'garbage' | 'stats';
  count?: number;
  seed?: number;
  /** Send from a second socket (the relay's port + 1) instead of the endpoint Y knows: a spoofed new source. */
  fromOther?: boolean;
}

/** What the relay prints. */
export type RelayMessage =
  | { type: 'ready' }
  | { type: 'done'; cmd: RelayCommand['cmd']; sent: number }
  | { type: 'stats'; xToY: number; yToX: number; recorded: number }
  | { type: 'error'; message: string };

/** Transport messages kept for replay (the last ones X sent). */
const RECORD = 256;
const TRANSPORT_TYPE = 4;
const TRANSPORT_MIN = 32;

function emit(message: RelayMessage): void {
  process.stdout.write(JSON.stringify(message) + '\n');
}

function main(): void {
  const c = JSON.parse(process.argv[2] ?? '{}') as RelayConfig;
  setTimeout(() => process.exit(0), c.timeoutMs).unref();
  const family = c.listen.address.includes(':') ? 'udp6' : 'udp4';
  const socket = dgram.createSocket({ type: family });
  const recorded: Buffer[] = [];
  let xToY = 0;
  let yToX = 0;
  const same = (r: dgram.RemoteInfo, e: { address: string; port: number }): boolean => r.address === e.address && r.port === e.port;
  socket.on('message', (msg, rinfo) => {
    if (same(rinfo, c.x)) {
      xToY++;
      if (msg.length >= TRANSPORT_MIN && msg[0] === TRANSPORT_TYPE) {
        recorded.push(Buffer.from(msg));
        if (recorded.length > RECORD) recorded.shift();
      }
      socket.send(msg, c.y.port, c.y.address);
    } else if (same(rinfo, c.y)) {
      yToX++;
      socket.send(msg, c.x.port, c.x.address);
    }
  });
  socket.on('error', (err) => {
    emit({ type: 'error', message: err.message });
    process.exit(1);
  });

  const other = dgram.createSocket({ type: family });
  other.bind(c.listen.port + 1, c.listen.address);
  other.on('error', () => undefined);
  // Paced (8 datagrams, then 2 ms), so the receiver's socket buffer never overflows: a datagram the
  // kernel dropped would never reach the device's counters, and the tests count every one.
  const sendAll = async (datagrams: Buffer[], via: dgram.Socket): Promise<number> => {
    for (let i = 0; i < datagrams.length; i++) {
      await new Promise<void>((resolve, reject) => via.send(datagrams[i]!, c.y.port, c.y.address, (err) => (err ? reject(err) : resolve())));
      if (i % 8 === 7) await new Promise((r) => setTimeout(r, 2));
    }
    return datagrams.length;
  };

  const lines = createInterface({ input: process.stdin });
  lines.on('line', (line) => {
    let command: RelayCommand;
    try {
      command = JSON.parse(line) as RelayCommand;
    } catch {
      return;
    }
    const count = Math.max(0, Math.min(command.count ?? 1, 10_000));
    const pick = (): Buffer[] => recorded.slice(-Math.min(count, recorded.length));
    let datagrams: Buffer[];
    switch (command.cmd) {
      case 'stats':
        emit({ type: 'stats', xToY, yToX, recorded: recorded.length });
        return;
      case 'replay':
        datagrams = pick().map((d) => Buffer.from(d));
        break;
      case 'tamper':
        datagrams = pick().map((d) => {
          const t = Buffer.from(d);
          t[t.length - 1]! ^= 0x01; // inside the Poly1305 tag
          return t;
        });
        break;
      case 'truncate': {
        // Transport messages below 32 bytes, and handshake types below their fixed sizes (148, 92, 64).
        datagrams = [];
        const source = pick();
        for (let i = 0; i < count; i++) {
          const kind = i % 4;
          if (kind === 0 && source.length > 0) datagrams.push(Buffer.from(source[i % source.length]!.subarray(0, 1 + (i % 31))));
          else {
            const type = kind === 0 ? 4 : kind;
            const full = [0, 148, 92, 64, 32][type]!;
            const d = Buffer.alloc(1 + ((i * 7) % (full - 1)));
            d[0] = type;
            datagrams.push(d);
          }
        }
        break;
      }
      case 'garbage': {
        let x = (command.seed ?? 1) >>> 0 || 1;
        const next = (): number => {
          x ^= x << 13;
          x ^= x >>> 17;
          x ^= x << 5;
          return x >>> 0;
        };
        datagrams = [];
        for (let i = 0; i < count; i++) {
          const d = Buffer.alloc(1 + (next() % 1400));
          for (let j = 0; j < d.length; j++) d[j] = next() & 0xff;
          datagrams.push(d);
        }
        break;
      }
      default:
        return;
    }
    sendAll(datagrams, command.fromOther === true ? other : socket).then(
      (sent) => emit({ type: 'done', cmd: command.cmd, sent }),
      (err: Error) => emit({ type: 'error', message: err.message }),
    );
  });
  lines.on('close', () => process.exit(0));
  socket.bind(c.listen.port, c.listen.address, () => emit({ type: 'ready' }));
}

if (require.main === module) main();
