/**
 * Steady, light traffic for long lab observations (a WireGuard rekey after
 * REKEY_AFTER_TIME): an echo server, and a client that sends one numbered
 * datagram every `intervalMs` and counts the echoes. Run inside a namespace:
 * `ip netns exec <ns> node udp-ticker.js '<json TickerConfig>'`.
 *
 * JSON lines on stdout: `{"type":"ready","port":n}` (server),
 * `{"type":"result",...}` (client, when it has sent `count`, on SIGTERM, or on
 * stdin end; echoes get `graceMs` to arrive). Bounded by `count` and
 * `timeoutMs`.
 * @module
 */
import * as dgram from 'node:dgram';

/** What a ticker does (argv[2], JSON). */
export type TickerConfig =
  | { mode: 'server'; host: string; port: number; timeoutMs: number }
  | { mode: 'client'; host: string; port: number; intervalMs: number; count: number; graceMs: number; timeoutMs: number };

/** The client's outcome. */
export interface TickerResult {
  sent: number;
  /** Distinct sequence numbers echoed back. */
  echoed: number;
  lost: number;
  /** Longest run of consecutive lost sequence numbers. */
  longestGap: number;
}

function emit(message: object): void {
  process.stdout.write(JSON.stringify(message) + '\n');
}

function main(): void {
  const c = JSON.parse(process.argv[2] ?? '{}') as TickerConfig;
  const socket = dgram.createSocket({ type: c.host.includes(':') ? 'udp6' : 'udp4' });
  setTimeout(() => process.exit(2), c.timeoutMs).unref();
  if (c.mode === 'server') {
    socket.on('message', (msg, rinfo) => socket.send(msg, rinfo.port, rinfo.address));
    socket.bind(c.port, c.host, () => emit({ type: 'ready', port: socket.address().port }));
    return;
  }
  const seen = new Uint8Array(c.count);
  let sent = 0;
  let finished = false;
  socket.on('message', (msg) => {
    if (msg.length === 8) {
      const seq = msg.readUInt32BE(0);
      if (seq < c.count) seen[seq] = 1;
    }
  });
  const finish = (): void => {
    if (finished) return;
    finished = true;
    clearInterval(timer);
    setTimeout(() => {
      let echoed = 0;
      let gap = 0;
      let longestGap = 0;
      for (let i = 0; i < sent; i++) {
        if (seen[i] === 1) {
          echoed++;
          gap = 0;
        } else longestGap = Math.max(longestGap, ++gap);
      }
      const result: TickerResult = { sent, echoed, lost: sent - echoed, longestGap };
      emit({ type: 'result', result });
      socket.close(() => process.exit(0));
    }, c.graceMs);
  };
  let timer: NodeJS.Timeout | undefined;
  process.on('SIGTERM', finish);
  process.stdin.on('end', finish);
  process.stdin.resume();
  socket.on('error', () => undefined); // e.g. ECONNREFUSED from an ICMP error: the datagram simply counts as lost
  socket.connect(c.port, c.host, () => {
    timer = setInterval(() => {
      if (sent >= c.count) return finish();
      const msg = Buffer.alloc(8);
      msg.writeUInt32BE(sent++, 0);
      socket.send(msg);
    }, c.intervalMs);
  });
}

if (require.main === module) main();
