/**
 * UdpSocket policy against a fake binding (no root, no sockets): capability
 * probing, GSO planning as sent, the EIO fallback (GSO off, one warning, the
 * batch resent), the EINVAL split, per-datagram errors with stable codes and
 * indices, EAGAIN waits and EINTR retries, bad input, closing with I/O
 * pending, and the receive side (GRO split, sources, drops, event mode).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { VectunError } from '../../src/errors.js';
import { Arena } from '../../src/core/arena.js';
import { UdpSocket, type UdpOpenOptions } from '../../src/udp/socket.js';
import { UdpEndpoint } from '../../src/udp/address.js';
import {
  EAGAIN, ECONNREFUSED, EHOSTUNREACH, EINTR, EINVAL, EIO, EMSGSIZE, ENETUNREACH, ENOPROTOOPT, FakeUdpBinding, type FakeUdpOptions,
} from './fake-udp-binding.js';
import { isCode } from '../error-code.js';

const READABLE = 1;
const WRITABLE = 2;
const PEER = UdpEndpoint.of('198.18.0.2', 5000);
const OTHER = UdpEndpoint.of('198.18.0.3', 5000);

async function openFake(fakeOptions: FakeUdpOptions = {}, options: UdpOpenOptions = {}): Promise<{ sock: UdpSocket; fake: FakeUdpBinding }> {
  const fake = new FakeUdpBinding(fakeOptions);
  const sock = await UdpSocket.open({ family: 4, ...options, binding: fake });
  return { sock, fake };
}


/** Datagrams whose bytes say which one they are. */
function numbered(count: number, size: number, from = 0): Uint8Array[] {
  return Array.from({ length: count }, (_, i) => new Uint8Array(size).fill((from + i) & 0xff));
}

const tick = (): Promise<void> => new Promise((r) => setImmediate(r));

test('open: binds, reports the kernel-picked port, probes GSO and GRO, asks for SO_RXQ_OVFL', async () => {
  const { sock, fake } = await openFake({ port: 41000 }, { receiveBufferSize: 1 << 20, fwmark: 7 });
  assert.equal(sock.localAddress.port, 41000);
  assert.equal(sock.localAddress.address, '0.0.0.0');
  assert.deepEqual(sock.capabilities, { gso: true, gro: true, maxSegments: 64 });
  const names = fake.options.map((o) => o.name);
  assert.ok(names.includes('SO_RXQ_OVFL') && names.includes('UDP_GRO') && names.includes('SO_RCVBUFFORCE') && names.includes('SO_MARK'));
  assert.deepEqual(fake.opened[0], { family: 4, v6only: 0, netns: '', fd: 200 });
  await sock.close();
  assert.deepEqual(fake.closedFds, [200]);
});

test('open: family dual is an AF_INET6 socket with IPV6_V6ONLY off; 6 sets it; netns names map to /run/netns', async () => {
  const dual = await openFake({}, { family: 'dual', netns: 'vt-test' });
  assert.deepEqual(dual.fake.opened[0], { family: 6, v6only: 0, netns: '/run/netns/vt-test', fd: 200 });
  assert.equal(dual.sock.localAddress.address, '::');
  await dual.sock.close();
  const v6 = await openFake({}, { family: 6 });
  assert.equal(v6.fake.opened[0]!.v6only, 1);
  await v6.sock.close();
  const dual4 = await openFake({}, { family: 'dual', address: '198.18.0.5', port: 1234 });
  assert.equal(dual4.fake.bound!.length, 28, 'IPv4 address bound IPv4-mapped on the AF_INET6 socket');
  assert.deepEqual([...dual4.fake.bound!.subarray(18, 24)], [0xff, 0xff, 198, 18, 0, 5]);
  assert.equal(dual4.sock.localAddress.address, '198.18.0.5');
  await dual4.sock.close();
  await assert.rejects(UdpSocket.open({ netns: 'no such name!', binding: new FakeUdpBinding() }), isCode('ERR_INVALID_ARG'));
  await assert.rejects(UdpSocket.open({ family: 4, address: '2001:2::1', binding: new FakeUdpBinding() }), isCode('ERR_UDP_INVALID_ENDPOINT'));
  await assert.rejects(UdpSocket.open({ batchSize: 0, binding: new FakeUdpBinding() }), isCode('ERR_INVALID_ARG'));
  await assert.rejects(UdpSocket.open({ port: 70000, binding: new FakeUdpBinding() }), isCode('ERR_INVALID_ARG'));
});

test('open: the default family falls back to IPv4 where IPv6 is disabled (EAFNOSUPPORT); an explicit 6 fails', async () => {
  const fake = new FakeUdpBinding({ noInet6: true });
  const sock = await UdpSocket.open({ binding: fake });
  assert.equal(sock.localAddress.address, '0.0.0.0');
  assert.deepEqual(fake.opened.map((o) => o.family), [4]);
  await sock.close();
  await assert.rejects(UdpSocket.open({ family: 6, binding: new FakeUdpBinding({ noInet6: true }) }), isCode('ERR_UDP_SYSCALL'));
});

test('GSO: equal-size datagrams to one destination go out as one UDP_SEGMENT message, from the caller\'s buffers', async () => {
  const { sock, fake } = await openFake();
  const data = [...numbered(10, 1200), new Uint8Array(500).fill(99)];
  const r = await sock.send(data, PEER);
  assert.deepEqual({ ...r, failures: r.failures.length }, { datagrams: 11, bytes: 12500, calls: 1, failures: 0 });
  assert.equal(fake.sendCalls.length, 1);
  assert.equal(fake.sent.length, 1);
  assert.equal(fake.sent[0]!.segment, 1200);
  assert.equal(fake.sent[0]!.data.length, 12500);
  // No copy: the iovecs are the caller's arrays.
  fake.sent[0]!.buffers.forEach((b, i) => assert.equal(b, data[i]));
  assert.deepEqual(fake.sent[0]!.address, PEER.sockaddr);
  const st = sock.stats;
  assert.equal(st.gsoSends, 1);
  assert.equal(st.gsoSegments, 11);
  assert.equal(st.segmentsPerSendCall, 11);
  await sock.close();
});

test('arena views can be sent as they are', async () => {
  const { sock, fake } = await openFake();
  const arena = new Arena(1 << 16);
  arena.bytes.fill(7, 0, 3000);
  const views = [arena.bytes.subarray(0, 1000), arena.bytes.subarray(1000, 2000), arena.bytes.subarray(2000, 2500)];
  const r = await sock.send(views, PEER);
  assert.equal(r.datagrams, 3);
  assert.equal(fake.sent[0]!.buffers[1], views[1]);
  assert.equal(fake.sent[0]!.segment, 1000);
  await sock.close();
});

test('no UDP_SEGMENT (ENOPROTOOPT at the probe) or gso: false: one datagram per message, still one sendmmsg', async () => {
  for (const [fo, o] of [[{ gsoProbe: -ENOPROTOOPT }, {}], [{}, { gso: false }]] as const) {
    const { sock, fake } = await openFake(fo, o);
    assert.deepEqual(sock.capabilities, { gso: false, gro: true, maxSegments: 1 });
    const r = await sock.send(numbered(5, 100), PEER);
    assert.equal(r.datagrams, 5);
    assert.equal(r.calls, 1);
    assert.equal(fake.sent.length, 5);
    assert.ok(fake.sent.every((m) => m.segment === 0 && m.data.length === 100));
    await sock.close();
  }
  const { sock } = await openFake({ groProbe: -ENOPROTOOPT });
  assert.equal(sock.capabilities.gro, false);
  await sock.close();
});

test('EIO on a GSO send: GSO off, one warning (ERR_UDP_GSO_FALLBACK), the batch resent without it, counted', async () => {
  const { sock, fake } = await openFake();
  const warnings: VectunError[] = [];
  sock.on('warning', (w: VectunError) => warnings.push(w));
  fake.sendScript.push(-EIO);
  const data = numbered(8, 1000);
  const r = await sock.send(data, PEER);
  assert.equal(r.datagrams, 8);
  assert.equal(r.failures.length, 0);
  assert.equal(fake.sendCalls[0]![0]!.segment, 1000, 'first try was GSO');
  assert.equal(fake.sent.length, 8);
  fake.sent.forEach((m, i) => {
    assert.equal(m.segment, 0);
    assert.equal(m.data[0], i, 'order kept');
  });
  assert.equal(warnings.length, 1);
  assert.equal(warnings[0]!.code, 'ERR_UDP_GSO_FALLBACK');
  assert.equal(warnings[0]!.errno, EIO);
  assert.deepEqual(sock.capabilities, { gso: false, gro: true, maxSegments: 1 });
  assert.equal(sock.stats.gsoFallbacks, 1);
  // Later batches: no GSO, no second warning.
  await sock.send(numbered(3, 1000), PEER);
  assert.ok(fake.sent.slice(8).every((m) => m.segment === 0));
  assert.equal(warnings.length, 1);
  await sock.close();
});

test('EIO in the middle of a batch: messages before it stay sent, the rest is resent without GSO', async () => {
  const { sock, fake } = await openFake();
  sock.on('warning', () => undefined);
  // Message 0 (to PEER) goes through, message 1 (to OTHER) fails with EIO.
  fake.sendScript.push(1, -EIO);
  const r = await sock.sendBatch([
    ...numbered(3, 100).map((data) => ({ data, destination: PEER })),
    ...numbered(3, 100, 3).map((data) => ({ data, destination: OTHER })),
  ]);
  assert.equal(r.datagrams, 6);
  assert.deepEqual(fake.sent.map((m) => [m.segment, m.data[0]]), [[100, 0], [0, 3], [0, 4], [0, 5]]);
  assert.deepEqual(fake.sent[1]!.address, OTHER.sockaddr);
  await sock.close();
});

test('EINVAL on a GSO message (segment above the path MTU): that message is resent one by one, GSO stays on for smaller sizes', async () => {
  const { sock, fake } = await openFake();
  fake.sendScript.push(-EINVAL);
  const r = await sock.send(numbered(4, 1472), PEER);
  assert.equal(r.datagrams, 4);
  assert.deepEqual(fake.sent.map((m) => m.segment), [0, 0, 0, 0]);
  assert.equal(sock.stats.gsoSplits, 1);
  assert.equal(sock.capabilities.gso, true);
  await sock.send(numbered(4, 1472), PEER);
  assert.deepEqual(fake.sent.slice(4).map((m) => m.segment), [0, 0, 0, 0], '1472-byte runs are no longer tried');
  await sock.send(numbered(4, 1400), PEER);
  assert.equal(fake.sent[8]!.segment, 1400);
  await sock.close();
});

test('per-datagram errors: ECONNREFUSED, EHOSTUNREACH, ENETUNREACH, EMSGSIZE with stable codes and indices; the rest is sent', async () => {
  const cases: [number, string][] = [
    [ECONNREFUSED, 'ERR_UDP_CONNECTION_REFUSED'], [EHOSTUNREACH, 'ERR_UDP_HOST_UNREACHABLE'],
    [ENETUNREACH, 'ERR_UDP_NETWORK_UNREACHABLE'], [EMSGSIZE, 'ERR_UDP_MESSAGE_SIZE'],
  ];
  for (const [errno, code] of cases) {
    const { sock, fake } = await openFake({}, { gso: false });
    // Datagram 0 sent, 1 fails, then 2..3 sent.
    fake.sendScript.push(1, -errno);
    const r = await sock.send(numbered(4, 50), PEER);
    assert.equal(r.datagrams, 3, code);
    assert.equal(r.calls, 2);
    assert.equal(r.failures.length, 1);
    assert.equal(r.failures[0]!.index, 1);
    assert.equal(r.failures[0]!.error.code, code);
    assert.equal(r.failures[0]!.error.errno, errno);
    assert.equal(r.failures[0]!.error.syscall, 'sendmmsg');
    assert.deepEqual(fake.sent.map((m) => m.data[0]), [0, 2, 3]);
    assert.equal(sock.stats.sendFailures[code], 1);
    await sock.close();
  }
});

test('an error on a non-GSO-refusable GSO message fails each of its datagrams with its own index', async () => {
  const { sock, fake } = await openFake();
  fake.sendScript.push(-ECONNREFUSED);
  const r = await sock.send([...numbered(3, 10), new Uint8Array(20)], PEER);
  assert.deepEqual(r.failures.map((f) => f.index), [0, 1, 2]);
  assert.equal(r.datagrams, 1);
  assert.equal(fake.sent[0]!.data.length, 20);
  await sock.close();
});

test('EAGAIN waits for writability and resumes at the same message; EINTR is retried', async () => {
  const { sock, fake } = await openFake({}, { gso: false });
  fake.sendScript.push(2, -EAGAIN, -EINTR);
  const p = sock.send(numbered(5, 10), PEER);
  await tick();
  assert.equal(fake.mask & WRITABLE, WRITABLE, 'waiting for POLLOUT');
  assert.equal(fake.sent.length, 2);
  fake.fire(WRITABLE);
  const r = await p;
  assert.equal(r.datagrams, 5);
  assert.deepEqual(fake.sent.map((m) => m.data[0]), [0, 1, 2, 3, 4]);
  assert.equal(sock.stats.sendWaits, 1);
  assert.equal(fake.mask & WRITABLE, 0);
  await sock.close();
});

test('sends are serialized: a second send waits for the first one\'s EAGAIN', async () => {
  const { sock, fake } = await openFake({}, { gso: false });
  fake.sendScript.push(-EAGAIN);
  const first = sock.send(numbered(2, 10), PEER);
  const second = sock.send(numbered(2, 10, 2), PEER);
  await tick();
  assert.equal(fake.sent.length, 0);
  fake.fire(WRITABLE);
  await Promise.all([first, second]);
  assert.deepEqual(fake.sent.map((m) => m.data[0]), [0, 1, 2, 3]);
  await sock.close();
});

test('bad input: oversized datagram and non-Uint8Array fail alone with their index; the rest is sent', async () => {
  const { sock, fake } = await openFake();
  const data = [new Uint8Array(10), new Uint8Array(65508), new Uint8Array(10), 'x' as unknown as Uint8Array, new Uint8Array(10)];
  const r = await sock.send(data, PEER);
  assert.deepEqual(r.failures.map((f) => [f.index, f.error.code]), [[1, 'ERR_UDP_MESSAGE_SIZE'], [3, 'ERR_INVALID_ARG']]);
  assert.equal(r.datagrams, 3);
  assert.equal(fake.sent.reduce((n, m) => n + m.data.length, 0), 30);
  await sock.close();
  // IPv6 carries 20 bytes more per datagram (no IPv4 header).
  const v6 = await openFake({}, { family: 6 });
  const r6 = await v6.sock.send([new Uint8Array(65527)], UdpEndpoint.of('2001:2::2', 1));
  assert.equal(r6.failures.length, 0);
  const r6b = await v6.sock.send([new Uint8Array(65528)], UdpEndpoint.of('2001:2::2', 1));
  assert.equal(r6b.failures[0]!.error.code, 'ERR_UDP_MESSAGE_SIZE');
  await v6.sock.close();
});

test('bad destinations: ERR_UDP_INVALID_ENDPOINT for the call (send) or for the transmit alone (sendBatch)', async () => {
  const { sock, fake } = await openFake();
  await assert.rejects(sock.send([new Uint8Array(1)], UdpEndpoint.of('2001:2::1', 1)), isCode('ERR_UDP_INVALID_ENDPOINT'));
  await assert.rejects(sock.send([new Uint8Array(1)], { address: '198.18.0.1', port: 1, family: 4 } as unknown as UdpEndpoint), isCode('ERR_UDP_INVALID_ENDPOINT'));
  await assert.rejects(sock.send([new Uint8Array(1)], UdpEndpoint.of('198.18.0.1', 0)), isCode('ERR_UDP_INVALID_ENDPOINT'));
  await assert.rejects(sock.send([new Uint8Array(1)]), isCode('ERR_UDP_INVALID_ENDPOINT'), 'no destination and not connected');
  assert.throws(() => UdpSocket.endpoint('198.18.0.300', 1), isCode('ERR_UDP_INVALID_ENDPOINT'));
  assert.equal(fake.sendCalls.length, 0);
  const r = await sock.sendBatch([
    { data: new Uint8Array(5), destination: PEER },
    { data: new Uint8Array(5), destination: UdpEndpoint.of('2001:2::1', 1) },
    { data: new Uint8Array(5), destination: null as unknown as UdpEndpoint },
    { data: new Uint8Array(5), destination: OTHER },
  ]);
  assert.deepEqual(r.failures.map((f) => [f.index, f.error.code]), [[1, 'ERR_UDP_INVALID_ENDPOINT'], [2, 'ERR_UDP_INVALID_ENDPOINT']]);
  assert.equal(r.datagrams, 2);
  assert.deepEqual(fake.sent.map((m) => m.address), [PEER.sockaddr, OTHER.sockaddr]);
  await sock.close();
});

test('empty batches are no-ops (no system call)', async () => {
  const { sock, fake } = await openFake();
  assert.deepEqual(await sock.send([], PEER), { datagrams: 0, bytes: 0, calls: 0, failures: [] });
  assert.deepEqual(await sock.sendBatch([]), { datagrams: 0, bytes: 0, calls: 0, failures: [] });
  assert.equal(fake.sendCalls.length, 0);
  await sock.close();
});

test('dual-stack: IPv4 destinations are handed over as IPv4-mapped; connect() then send without a destination', async () => {
  const { sock, fake } = await openFake({}, { family: 'dual' });
  await sock.send([new Uint8Array(3)], PEER);
  assert.equal(fake.sent[0]!.address.length, 28);
  assert.deepEqual([...fake.sent[0]!.address.subarray(18, 24)], [0xff, 0xff, 198, 18, 0, 2]);
  await sock.connect(PEER);
  assert.equal(fake.connected!.length, 28);
  assert.equal(sock.remoteAddress, PEER);
  await sock.send([new Uint8Array(3)]);
  assert.equal(fake.sent[1]!.address.length, 0, 'connected: no msg_name');
  await sock.close();
});

test('receive: GRO messages are split by the segment size; sources are interned; v4-mapped shows as IPv4', async () => {
  const { sock, fake } = await openFake({}, { family: 'dual' });
  const from = UdpEndpoint.of('198.18.0.9', 7000);
  const mappedName = new Uint8Array(28);
  new DataView(mappedName.buffer).setUint16(0, 10, true);
  mappedName.set(from.sockaddr.subarray(2, 4), 2);
  mappedName.set([0xff, 0xff], 18);
  mappedName.set(from.sockaddr.subarray(4, 8), 20);
  const coalesced = new Uint8Array(3000).map((_, i) => Math.floor(i / 1200));
  fake.inbox.push(
    { data: coalesced, segment: 1200, name: mappedName },
    { data: new Uint8Array([42]), name: mappedName },
    { data: new Uint8Array([43]), name: UdpEndpoint.of('2001:2::9', 7000).sockaddr },
  );
  const batch = await sock.read();
  assert.deepEqual(batch.datagrams.map((d) => d.length), [1200, 1200, 600, 1, 1]);
  assert.deepEqual(batch.datagrams.map((d) => d[0]), [0, 1, 2, 42, 43]);
  assert.equal(batch.sources[0], batch.sources[3], 'same source, same object');
  assert.equal(batch.sources[0]!.family, 4);
  assert.equal(batch.sources[0]!.address, '198.18.0.9');
  assert.equal(batch.sources[4]!.address, '2001:2::9');
  assert.ok(Arena.of(batch.datagrams[0]!) !== undefined, 'views on an Arena');
  const st = sock.stats;
  assert.equal(st.groReceives, 1);
  assert.equal(st.groSegments, 3);
  assert.equal(st.datagramsReceived, 5);
  assert.equal(st.bytesReceived, 3002);
  // Across batches, too.
  fake.inbox.push({ data: new Uint8Array(1), name: mappedName });
  assert.equal((await sock.read()).sources[0], batch.sources[0]);
  await sock.close();
});

test('receive: SO_RXQ_OVFL drops are counted, truncated messages are skipped and counted', async () => {
  const { sock, fake } = await openFake();
  fake.drops = 17;
  fake.inbox.push({ data: new Uint8Array(1), name: PEER.sockaddr, truncated: true }, { data: new Uint8Array(2), name: PEER.sockaddr });
  const b = await sock.read();
  assert.equal(b.datagrams.length, 1);
  assert.equal(sock.stats.receiveDrops, 17);
  assert.equal(sock.stats.truncated, 1);
  await sock.close();
});

test('receive waits for readability on EAGAIN; EINTR is retried; a real failure rejects the read', async () => {
  const { sock, fake } = await openFake();
  const p = sock.read();
  await tick();
  assert.equal(fake.mask & READABLE, READABLE);
  fake.recvScript.push(-EINTR);
  fake.inbox.push({ data: new Uint8Array(4), name: PEER.sockaddr });
  fake.fire(READABLE);
  assert.equal((await p).datagrams.length, 1);
  fake.recvScript.push(-12 /* ENOMEM */);
  await assert.rejects(sock.read(), isCode('ERR_UDP_SYSCALL'));
  await sock.close();
});

test('an ICMP error reported by recvmmsg (ECONNREFUSED on a connected socket) is counted and reading goes on', async () => {
  const { sock, fake } = await openFake();
  fake.recvScript.push(-ECONNREFUSED, -EHOSTUNREACH);
  fake.inbox.push({ data: new Uint8Array([5]), name: PEER.sockaddr });
  const b = await sock.read();
  assert.deepEqual(b.datagrams.map((d) => d[0]), [5]);
  assert.deepEqual(sock.stats.receiveErrors, { ERR_UDP_CONNECTION_REFUSED: 1, ERR_UDP_HOST_UNREACHABLE: 1 });
  await sock.close();
});

test("event mode: 'datagrams' per batch, pause() stops it, resume() restarts it", async () => {
  const { sock, fake } = await openFake();
  const seen: number[] = [];
  sock.on('datagrams', (b: { datagrams: Uint8Array[] }) => seen.push(...b.datagrams.map((d) => d[0]!)));
  fake.inbox.push({ data: new Uint8Array([1]), name: PEER.sockaddr });
  await tick();
  await tick();
  assert.deepEqual(seen, [1]);
  sock.pause();
  fake.inbox.push({ data: new Uint8Array([2]), name: PEER.sockaddr });
  fake.fire(READABLE);
  await tick();
  assert.deepEqual(seen, [1]);
  sock.resume();
  await tick();
  assert.deepEqual(seen, [1, 2]);
  await sock.close();
});

test('close: idempotent, pending read and a send waiting on EAGAIN reject with ERR_UDP_CLOSED, later calls too; the iterator ends', async () => {
  const { sock, fake } = await openFake({}, { gso: false });
  const read = sock.read();
  fake.sendScript.push(-EAGAIN);
  const send = sock.send(numbered(2, 10), PEER);
  const iterated = (async () => {
    let n = 0;
    for await (const _ of sock) n++;
    return n;
  })();
  await tick();
  let closes = 0;
  sock.on('close', () => closes++);
  const c1 = sock.close();
  const c2 = sock.close();
  assert.equal(c1, c2);
  await assert.rejects(read, isCode('ERR_UDP_CLOSED'));
  await assert.rejects(send, isCode('ERR_UDP_CLOSED'));
  assert.equal(await iterated, 0);
  await c1;
  assert.equal(closes, 1);
  assert.ok(sock.closed);
  await assert.rejects(sock.read(), isCode('ERR_UDP_CLOSED'));
  await assert.rejects(sock.send([new Uint8Array(1)], PEER), isCode('ERR_UDP_CLOSED'));
  await assert.rejects(sock.sendBatch([]), isCode('ERR_UDP_CLOSED'));
  assert.throws(() => sock.pause(), isCode('ERR_UDP_CLOSED'));
  assert.deepEqual(fake.closedFds, [200]);
  assert.ok(fake.pollers[0]!.closed);
});

test('AbortSignal closes the socket; Symbol.asyncDispose closes it; unref/ref reach the poller', async () => {
  const ac = new AbortController();
  const { sock, fake } = await openFake({}, { signal: ac.signal });
  sock.unref();
  assert.equal(fake.pollers[0]!.ref, false);
  sock.ref();
  assert.equal(fake.pollers[0]!.ref, true);
  ac.abort();
  assert.ok(sock.closed);
  const other = await openFake();
  await other.sock[Symbol.asyncDispose]();
  assert.ok(other.sock.closed);
  await assert.rejects(UdpSocket.open({ signal: AbortSignal.abort(), binding: new FakeUdpBinding() }));
});

test('property: under any mix of kernel answers, every datagram is sent exactly once, in order, or reported once with its index', async () => {
  const step = fc.oneof(
    { weight: 6, arbitrary: fc.constant<number | undefined>(undefined) },
    { weight: 3, arbitrary: fc.integer({ min: 1, max: 3 }) },
    { weight: 1, arbitrary: fc.constantFrom(-EAGAIN, -EINTR, -EIO, -EINVAL, -EMSGSIZE, -ECONNREFUSED, -EHOSTUNREACH, -ENETUNREACH) },
  );
  const arb = fc.record({
    sizes: fc.array(fc.constantFrom(0, 1, 100, 100, 100, 1200, 1200, 65508), { minLength: 1, maxLength: 120 }),
    dests: fc.array(fc.boolean(), { minLength: 1, maxLength: 120 }),
    script: fc.array(step, { maxLength: 40 }),
    batch: fc.boolean(),
    gso: fc.boolean(),
  });
  await fc.assert(
    fc.asyncProperty(arb, async ({ sizes, dests, script, batch, gso }) => {
      const fake = new FakeUdpBinding();
      const sock = await UdpSocket.open({ family: 4, gso, binding: fake });
      sock.on('warning', () => undefined);
      fake.sendScript.push(...script);
      // Datagram i carries i in its first two bytes (when it has them) so the order on the wire is checkable.
      const data = sizes.map((n, i) => {
        const d = new Uint8Array(n);
        if (n >= 2) {
          d[0] = i >> 8;
          d[1] = i & 0xff;
        }
        return d;
      });
      const destOf = (i: number): UdpEndpoint => (batch && dests[i % dests.length] === true ? OTHER : PEER);
      const pending = batch ? sock.sendBatch(data.map((d, i) => ({ data: d, destination: destOf(i) }))) : sock.send(data, PEER);
      // Writability whenever the socket waits for it.
      const pump = setInterval(() => {
        if ((fake.mask & WRITABLE) !== 0) fake.fire(WRITABLE);
      }, 0);
      let r;
      try {
        r = await pending;
      } finally {
        clearInterval(pump);
      }
      // Rebuild the datagrams the kernel took from the messages it accepted.
      const wire: number[] = [];
      const wireSizes: number[] = [];
      for (const m of fake.sent) {
        const seg = m.segment === 0 ? m.data.length : m.segment;
        for (let at = 0; at < m.data.length || (m.data.length === 0 && at === 0); at += Math.max(seg, 1)) {
          const len = Math.min(seg, m.data.length - at);
          wireSizes.push(len);
          wire.push(len >= 2 ? (m.data[at]! << 8) | m.data[at + 1]! : -1);
          if (m.data.length === 0) break;
        }
        if (m.segment > 0) assert.ok(m.buffers.every((b, k) => k === m.buffers.length - 1 ? b.length <= m.segment : b.length === m.segment));
      }
      const failed = r.failures.map((f) => f.index);
      assert.equal(new Set(failed).size, failed.length, 'a datagram is reported at most once');
      assert.equal(r.datagrams + failed.length, data.length, 'every datagram accounted for');
      assert.equal(wire.length, r.datagrams, 'result matches what the kernel took');
      const expectedOrder = data.map((_, i) => i).filter((i) => !failed.includes(i));
      assert.deepEqual(wireSizes, expectedOrder.map((i) => sizes[i]!));
      expectedOrder.forEach((i, k) => {
        if (sizes[i]! >= 2) assert.equal(wire[k], i, 'sent in order, once');
      });
      for (const f of r.failures) {
        if (sizes[f.index] === 65508) assert.equal(f.error.code, 'ERR_UDP_MESSAGE_SIZE');
      }
      await sock.close();
    }),
    { numRuns: 150 },
  );
});

test('receive views are reused per slot only while the slot is cut the same way (length and GRO segment size)', async () => {
  const { sock, fake } = await openFake();
  const msg = (len: number, segment = 0, fillWith = len & 0xff): { data: Uint8Array; segment: number; name: Uint8Array } => ({
    data: new Uint8Array(len).fill(fillWith), segment, name: PEER.sockaddr,
  });
  const lengths = async (): Promise<number[]> => (await sock.read()).datagrams.map((d) => d.length);
  fake.inbox.push(msg(3000, 1200));
  assert.deepEqual(await lengths(), [1200, 1200, 600]);
  fake.inbox.push(msg(2400, 1200));
  assert.deepEqual(await lengths(), [1200, 1200]);
  fake.inbox.push(msg(2400, 800));
  assert.deepEqual(await lengths(), [800, 800, 800]);
  fake.inbox.push(msg(2400));
  assert.deepEqual(await lengths(), [2400]);
  fake.inbox.push(msg(2400, 0, 9));
  const again = await sock.read();
  assert.deepEqual(again.datagrams.map((d) => [d.length, d[0], d[2399]]), [[2400, 9, 9]], 'same cut, new contents');
  await sock.close();
});

test('a skipped (truncated) message between two sources does not give the next message the wrong source', async () => {
  const { sock, fake } = await openFake();
  fake.inbox.push(
    { data: new Uint8Array([1]), name: PEER.sockaddr },
    { data: new Uint8Array([2]), name: OTHER.sockaddr, truncated: true },
    { data: new Uint8Array([3]), name: OTHER.sockaddr },
  );
  const b = await sock.read();
  assert.deepEqual(b.datagrams.map((d) => d[0]), [1, 3]);
  assert.equal(b.sources[0]!.key, PEER.key);
  assert.equal(b.sources[1]!.key, OTHER.key);
  await sock.close();
});
