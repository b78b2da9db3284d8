/**
 * A plain Node `dgram` echo for the interoperation test, run inside a lab
 * namespace: `node udp-dgram-peer.js '{"type","host","count","timeoutMs"}'`.
 * Prints `{"port"}` once bound, echoes every datagram to its sender, and
 * prints `{"received","bytes"}` and exits after `count` datagrams (or fails
 * after `timeoutMs`).
 */
import * as dgram from 'node:dgram';

const config = JSON.parse(process.argv[2] ?? '{}') as { type: 'udp4' | 'udp6'; host: string; count: number; timeoutMs: number };
const socket = dgram.createSocket({ type: config.type, recvBufferSize: 8 << 20 });
let received = 0;
let bytes = 0;
setTimeout(() => {
  process.stderr.write(`dgram peer: ${received} of ${config.count} datagrams within ${config.timeoutMs} ms\n`);
  process.exit(1);
}, config.timeoutMs).unref();
socket.on('message', (msg, rinfo) => {
  received++;
  bytes += msg.length;
  socket.send(msg, rinfo.port, rinfo.address, () => {
    if (received === config.count) {
      process.stdout.write(JSON.stringify({ received, bytes }) + '\n');
      socket.close();
    }
  });
});
socket.bind(0, config.host, () => process.stdout.write(JSON.stringify({ port: socket.address().port }) + '\n'));
