import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, statSync, lstatSync, writeFileSync, readdirSync, existsSync, unlinkSync } from 'node:fs';
import { connect, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { once } from 'node:events';
import { VectunError } from '../../src/errors.js';
import { UapiServer, uapiRequest } from '../../src/wg/uapi-server.js';
import { UAPI_MAX_LINE_BYTES } from '../../src/wg/uapi.js';
import { keyToHex } from '../../src/wg/crypto.js';
import { FakeWgControl } from './fake-control.js';

const key = (byte: number): Uint8Array => new Uint8Array(32).fill(byte);
const hex = (byte: number): string => keyToHex(key(byte));

/** A temporary socket folder (a subfolder, so the server has to create it). */
function tempDir(): { dir: string; cleanup: () => void } {
  const base = mkdtempSync(join(tmpdir(), 'vt-uapi-'));
  return { dir: join(base, 'wireguard'), cleanup: () => rmSync(base, { recursive: true, force: true }) };
}

async function withServer(body: (server: UapiServer, control: FakeWgControl, dir: string) => Promise<void>, logs: string[] = []): Promise<void> {
  const { dir, cleanup } = tempDir();
  const control = new FakeWgControl();
  const server = await UapiServer.listen({ interfaceName: 'vtuapi0', control, directory: dir, onLog: (m) => logs.push(m) });
  try {
    await body(server, control, dir);
  } finally {
    await server.close();
    cleanup();
  }
}

/** Sends raw bytes, half-closes, and collects everything until the server closes. */
function rawExchange(path: string, request: string | Buffer[], timeoutMs = 5000): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect(path);
    let out = '';
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`no close within ${timeoutMs} ms; got ${JSON.stringify(out)}`));
    }, timeoutMs);
    socket.setEncoding('utf8');
    socket.on('data', (d: string) => (out += d));
    socket.on('connect', async () => {
      if (typeof request === 'string') socket.end(request);
      else {
        for (const chunk of request) {
          socket.write(chunk);
          await new Promise((r) => setImmediate(r));
        }
        socket.end();
      }
    });
    socket.on('error', reject);
    socket.on('close', () => {
      clearTimeout(timer);
      resolve(out);
    });
  });
}

test('listen: folder created 0755, socket root-only 0600, no staging folder left', async () => {
  await withServer(async (server, _control, dir) => {
    assert.equal(statSync(dir).mode & 0o777, 0o755);
    const st = lstatSync(server.path);
    assert.ok(st.isSocket());
    assert.equal(st.mode & 0o777, 0o600);
    assert.equal(server.path, join(dir, 'vtuapi0.sock'));
    assert.deepEqual(readdirSync(dir), ['vtuapi0.sock']);
  });
});

test('get=1: status text then errno=0 and a blank line', async () => {
  await withServer(async (server, control) => {
    control.privateKey = key(0x40);
    control.listenPort = 51820;
    const reply = await rawExchange(server.path, 'get=1\n\n');
    assert.equal(reply, `private_key=${hex(0x40)}\nlisten_port=51820\nerrno=0\n\n`);
  });
});

test('set=1 then get=1 on one connection: two transactions, answered in order', async () => {
  await withServer(async (server, control) => {
    const reply = await rawExchange(
      server.path,
      `set=1\nlisten_port=7\npublic_key=${hex(1)}\nendpoint=198.18.0.1:51820\nallowed_ip=198.18.0.0/24\n\nget=1\n\n`,
    );
    assert.equal(
      reply,
      'errno=0\n\n' +
        `listen_port=7\npublic_key=${hex(1)}\npreshared_key=${'0'.repeat(64)}\nprotocol_version=1\nendpoint=198.18.0.1:51820\n` +
        'last_handshake_time_sec=0\nlast_handshake_time_nsec=0\ntx_bytes=0\nrx_bytes=0\npersistent_keepalive_interval=0\nallowed_ip=198.18.0.0/24\nerrno=0\n\n',
    );
    assert.equal(control.updates.length, 1);
    assert.equal(server.stats.sets, 1);
    assert.equal(server.stats.gets, 1);
  });
});

test('a transaction split into single bytes is the same transaction', async () => {
  await withServer(async (server, control) => {
    const text = `set=1\npublic_key=${hex(2)}\nallowed_ip=2001:2::/48\n\nget=1\n\n`;
    const reply = await rawExchange(server.path, [...Buffer.from(text)].map((b) => Buffer.from([b])));
    assert.match(reply, /^errno=0\n\npublic_key=/);
    assert.match(reply, /allowed_ip=2001:2::\/48\nerrno=0\n\n$/);
    assert.equal(control.peers.size, 1);
  });
});

test('set=1 errors: EPROTO for a line without "=", EINVAL for a bad value; lines before it applied; connection stays usable', async () => {
  await withServer(async (server, control) => {
    const reply = await rawExchange(server.path, 'set=1\nlisten_port=9\nnonsense\nfwmark=3\n\nset=1\nfwmark=x\n\nget=1\n\n');
    assert.equal(reply, 'errno=-71\n\nerrno=-22\n\nlisten_port=9\nerrno=0\n\n');
    assert.equal(control.listenPort, 9);
    assert.equal(control.fwmark, 0, 'the line after the bad one was not applied');
    assert.equal(server.stats.failures, 2);
  });
});

test('set=1: the device reports EADDRINUSE for a busy port; other failures are ENOANO (55) like wireguard-go', async () => {
  await withServer(async (server, control) => {
    control.busyPorts.add(4000);
    assert.deepEqual(await uapiRequest(server.path, 'set=1\nlisten_port=4000\n\n'), { body: '', errno: 98 });
    control.failNext = new Error('something odd');
    assert.deepEqual(await uapiRequest(server.path, 'set=1\nfwmark=1\n\n'), { body: '', errno: 55 });
    control.failNext = new VectunError('ERR_WG_CONFIG', 'too many peers', { errno: 22 });
    assert.deepEqual(await uapiRequest(server.path, `set=1\npublic_key=${hex(3)}\n\n`), { body: '', errno: 22 });
  });
});

test('an unknown operation closes the connection without a reply (wireguard-go)', async () => {
  await withServer(async (server) => {
    assert.equal(await rawExchange(server.path, 'hello=1\nget=1\n\n'), '');
    assert.equal(await rawExchange(server.path, 'set=1\r\n\n'), '', 'no CR tolerance on the operation line');
    assert.equal(server.stats.protocolCloses, 2);
  });
});

test('get=1 followed by anything but a blank line is EINVAL; the rest of that line is read as the next operation', async () => {
  await withServer(async (server) => {
    // 'x' is the trailing byte; "get=1" after it is the next operation.
    assert.equal(await rawExchange(server.path, 'get=1\nxget=1\n\n'), 'errno=-22\n\nerrno=0\n\n');
    assert.equal(await rawExchange(server.path, 'get=1\nx\n'), 'errno=-22\n\n');
    // The first byte decides, without waiting for its line to end (the connection stays open here).
    assert.deepEqual(await uapiRequest(server.path, 'get=1\nx'), { body: '', errno: 22 });
  });
});

test('a set=1 line over 64 KiB is EIO and the transaction is not applied', async () => {
  await withServer(async (server, control) => {
    const reply = await rawExchange(server.path, `set=1\nlisten_port=5\nfwmark=${'1'.repeat(UAPI_MAX_LINE_BYTES + 10)}\n\nget=1\n\n`);
    assert.equal(reply, 'errno=-5\n\nerrno=0\n\n');
    assert.equal(control.updates.length, 0);
  });
});

test('end of input inside set=1 still applies it (like Go\'s scanner at EOF) and answers', async () => {
  await withServer(async (server, control) => {
    assert.equal(await rawExchange(server.path, 'set=1\nlisten_port=77'), 'errno=0\n\n');
    assert.equal(control.listenPort, 77);
  });
});

test('transactions of different connections run one at a time: a get waits for a slow set', async () => {
  await withServer(async (server, control) => {
    control.delayMs = 200;
    const slowSet = uapiRequest(server.path, 'set=1\nlisten_port=1234\n\n');
    await new Promise((r) => setTimeout(r, 50));
    const get = await uapiRequest(server.path, 'get=1\n\n');
    assert.equal(get.body, 'listen_port=1234\n', 'the get saw the completed set');
    assert.equal((await slowSet).errno, 0);
  });
});

test('logs name the failure but never key material', async () => {
  const logs: string[] = [];
  await withServer(async (server) => {
    const secret = 'ab'.repeat(31) + 'zz';
    await uapiRequest(server.path, `set=1\nprivate_key=${secret}\n\n`);
    await uapiRequest(server.path, `set=1\nprivate_key${'cd'.repeat(32)}\n\n`);
    await uapiRequest(server.path, `set=1\npublic_key=${hex(1)}\npreshared_key=${'ef'.repeat(33)}\n\n`);
  }, logs);
  assert.equal(logs.length, 3);
  assert.match(logs[0]!, /errno 22/);
  assert.match(logs[1]!, /errno 71/);
  for (const line of logs) assert.doesNotMatch(line, /abababab|cdcdcdcd|efefefef/);
});

test('stale socket (nobody listening) is replaced; a live one is ERR_WG_UAPI_IN_USE; a non-socket is left alone', async () => {
  const { dir, cleanup } = tempDir();
  try {
    const control = new FakeWgControl();
    const first = await UapiServer.listen({ interfaceName: 'vtstale0', control, directory: dir });
    await assert.rejects(UapiServer.listen({ interfaceName: 'vtstale0', control, directory: dir }), (e: VectunError) => e.code === 'ERR_WG_UAPI_IN_USE');
    assert.equal((await uapiRequest(first.path, 'get=1\n\n')).errno, 0, 'the live server is untouched');
    await first.close();

    // A stale socket: bound, then its listener gone without unlinking (as after SIGKILL).
    const stalePath = join(dir, 'vtstale1.sock');
    const ghost = createServer();
    ghost.listen(stalePath);
    await once(ghost, 'listening');
    const fd = (ghost as unknown as { _handle: { fd: number } })._handle.fd;
    assert.ok(fd > 0);
    // Close the listening handle without libuv's unlink: rename away, close, rename back.
    const aside = join(dir, 'aside.sock');
    const { renameSync } = await import('node:fs');
    renameSync(stalePath, aside);
    await new Promise<void>((r) => ghost.close(() => r()));
    renameSync(aside, stalePath);
    assert.ok(lstatSync(stalePath).isSocket());
    const second = await UapiServer.listen({ interfaceName: 'vtstale1', control, directory: dir });
    assert.equal((await uapiRequest(second.path, 'get=1\n\n')).errno, 0);
    await second.close();

    const filePath = join(dir, 'vtfile0.sock');
    writeFileSync(filePath, 'not a socket');
    await assert.rejects(UapiServer.listen({ interfaceName: 'vtfile0', control, directory: dir }), (e: VectunError) => e.code === 'ERR_WG_UAPI');
    assert.ok(existsSync(filePath));
  } finally {
    cleanup();
  }
});

test('close removes the socket; deleting the socket file closes the server and emits removed', async () => {
  const { dir, cleanup } = tempDir();
  try {
    const control = new FakeWgControl();
    const a = await UapiServer.listen({ interfaceName: 'vtrm0', control, directory: dir });
    await a.close();
    await a.close();
    assert.equal(existsSync(a.path), false);
    await assert.rejects(uapiRequest(a.path, 'get=1\n\n'), (e: VectunError) => e.code === 'ERR_WG_UAPI');

    const b = await UapiServer.listen({ interfaceName: 'vtrm1', control, directory: dir });
    const removed = once(b, 'removed');
    unlinkSync(b.path);
    await Promise.race([removed, new Promise((_, reject) => setTimeout(() => reject(new Error('no removed event')), 3000))]);
    assert.equal(b.closed, true);
  } finally {
    cleanup();
  }
});

test('bad interface names are ERR_INVALID_ARG (the name becomes a path)', async () => {
  const control = new FakeWgControl();
  for (const name of ['', '../etc', 'a/b', '.', '..', 'x'.repeat(16), 'has space']) {
    await assert.rejects(UapiServer.listen({ interfaceName: name, control, directory: '/nonexistent' }), (e: VectunError) => e.code === 'ERR_INVALID_ARG', name);
  }
});
