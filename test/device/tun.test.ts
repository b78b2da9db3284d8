/**
 * Device-layer policy against a fake native binding (no root): offload
 * negotiation, the read path's split and drop accounting, the write path's
 * SG-4 error handling and the EINVAL GRO fallback, events and closing.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Tun, type TunMove, type TunOpenOptions } from '../../src/device/tun.js';
import { VectunError } from '../../src/errors.js';
import { Arena } from '../../src/core/arena.js';
import { GSO_NONE, GSO_TCPV4, GSO_UDP_L4 } from '../../src/core/virtio.js';
import { TCP_ACK, TCP_PSH, V4, buildPacket, frame } from '../core/packets.js';
import { EAGAIN, EBADFD, EINTR, EINVAL, EIO, FakeBinding, HOME_NETNS, type FakeOptions } from './fake-binding.js';
import { isCode } from '../error-code.js';

const READABLE = 1;
const WRITABLE = 2;

async function openFake(fake = new FakeBinding(), options: TunOpenOptions = {}): Promise<{ tun: Tun; fake: FakeBinding }> {
  const tun = await Tun.open({ ...options, binding: fake });
  return { tun, fake };
}

function fakeWith(options: FakeOptions): FakeBinding {
  return new FakeBinding(options);
}

const tcp = (seq: number, payload = 100, flags = TCP_ACK, dst: readonly number[] = V4.B): Uint8Array =>
  buildPacket({ version: 4, proto: 'tcp', src: V4.A, dst, payload, seq, ack: 1, flags });
const udp = (dst: readonly number[] = V4.B, payload = 100): Uint8Array =>
  buildPacket({ version: 4, proto: 'udp', src: V4.A, dst, payload });


const tick = (): Promise<void> => new Promise((r) => setImmediate(r));

test('DEV-3: offload 0x67 accepted -> all offloads, header size 10 set (D-7)', async () => {
  const { tun, fake } = await openFake();
  assert.deepEqual({ ...tun.offload }, { vnetHdr: true, csum: true, tso4: true, tso6: true, uso4: true, uso6: true });
  assert.deepEqual(tun.gro, { tcp: true, udp: true });
  assert.equal(tun.batchSize, 128);
  assert.equal(fake.opened[0]!.flags, 0x1 | 0x1000 | 0x4000);
  assert.deepEqual(
    fake.ioctls.map((c) => [c.request, c.value]),
    [['TUNSETVNETHDRSZ', 10], ['TUNSETOFFLOAD', 0x67]],
  );
  assert.equal(tun.name, 'fake0');
  assert.equal(tun.ifindex, 7);
  assert.equal(tun.mtu, 1500);
  await tun.close();
});

test('DEV-3 step 3: USO refused -> TCP offload only, UDP GRO off', async () => {
  const { tun, fake } = await openFake(fakeWith({ acceptOffload: (f) => (f & ~0x07) === 0 }));
  assert.deepEqual({ ...tun.offload }, { vnetHdr: true, csum: true, tso4: true, tso6: true, uso4: false, uso6: false });
  assert.deepEqual(tun.gro, { tcp: true, udp: false });
  assert.deepEqual(fake.ioctls.filter((c) => c.request === 'TUNSETOFFLOAD').map((c) => c.value), [0x67, 0x07]);
  tun.setGro({ udp: true }); // cannot turn on what was not negotiated
  assert.equal(tun.gro.udp, false);
  await tun.close();
});

test('D-8: TSO refused -> no offload but headers kept; offload "require" fails and closes the fd', async () => {
  const refuse = (f: number): boolean => f === 0;
  const { tun } = await openFake(fakeWith({ acceptOffload: refuse }));
  assert.deepEqual({ ...tun.offload }, { vnetHdr: true, csum: false, tso4: false, tso6: false, uso4: false, uso6: false });
  assert.deepEqual(tun.gro, { tcp: false, udp: false });
  await tun.close();

  const fake = fakeWith({ acceptOffload: refuse });
  await assert.rejects(Tun.open({ binding: fake, offload: 'require' }), isCode('ERR_TUN_OFFLOAD_UNAVAILABLE'));
  assert.deepEqual(fake.closedFds, [fake.opened[0]!.fd]);
});

test('D-8: IFF_VNET_HDR refused -> plain packets, batch of plain reads', async () => {
  const { tun, fake } = await openFake(fakeWith({ refuseVnetHdr: true }));
  assert.equal(tun.offload.vnetHdr, false);
  assert.equal(fake.opened.length, 1);
  assert.equal(fake.opened[0]!.flags & 0x4000, 0);
  assert.equal(fake.ioctls.length, 0, 'DEV-2: no TUNSETOFFLOAD without virtio headers');
  await tun.close();
});

test('TS-36: device without IFF_VNET_HDR -> one write per packet, raw packets read (DEV-2, RD-1, WR-1)', async () => {
  const { tun, fake } = await openFake(undefined, { offload: false });
  const packets = [tcp(1), tcp(101), tcp(201)];
  const r = await tun.write(packets);
  assert.equal(fake.written.length, 3);
  for (let i = 0; i < 3; i++) assert.deepEqual(fake.written[i], [packets[i]], 'one iovec: the packet itself');
  assert.equal(r.packets, 3);
  assert.equal(r.bytes, 3 * 140);
  fake.frames.push(tcp(1), new Uint8Array(0), udp());
  const batch = await tun.read();
  assert.deepEqual(batch.map((p) => p.length), [140, 128]);
  assert.deepEqual(batch[0], tcp(1));
  assert.equal(tun.stats.readDrops['ERR_PACKET_EMPTY'], 1);
  await tun.close();
});

test('TS-38: UDP not coalesced when USO was refused; TCP still coalesces', async () => {
  const { tun, fake } = await openFake(fakeWith({ acceptOffload: (f) => (f & ~0x07) === 0 }));
  const r = await tun.write([udp(), udp(), tcp(1), tcp(101)]);
  assert.deepEqual(fake.written.map((l) => l.map((b) => b.length)), [[10, 128], [10, 128], [10, 140, 100]]);
  assert.equal(fake.written[0]![0]![1], GSO_NONE);
  assert.equal(fake.written[2]![0]![1], GSO_TCPV4);
  assert.deepEqual([r.packets, r.writes, r.failures.length], [4, 3, 0]);
  assert.equal(tun.stats.coalescedWrites, 1);
  await tun.close();
});

test('UDP coalesces when USO was negotiated (DEV-3, GRO-A3)', async () => {
  const { tun, fake } = await openFake();
  await tun.write([udp(), udp()]);
  assert.deepEqual(fake.written.map((l) => l.map((b) => b.length)), [[10, 128, 100]]);
  assert.equal(fake.written[0]![0]![1], GSO_UDP_L4);
  await tun.close();
});

test('EINVAL fallback: coalesced TCP write rejected -> TCP GRO off, warning once, counted, packets resent uncoalesced', async () => {
  const { tun, fake } = await openFake();
  const warnings: VectunError[] = [];
  tun.on('warning', (w: VectunError) => warnings.push(w));
  const packets = [tcp(1), tcp(101)];
  const originals = packets.map((p) => p.slice());
  fake.writeScript.push(-EINVAL);
  const r = await tun.write(packets);
  assert.deepEqual(fake.attempts.map((l) => l.map((b) => b.length)), [[10, 140, 100], [10, 140], [10, 140]]);
  // Resent with all-zero headers and the head restored to its original bytes.
  assert.deepEqual(fake.written, [[new Uint8Array(10), originals[0]], [new Uint8Array(10), originals[1]]]);
  assert.deepEqual([r.packets, r.writes, r.failures.length], [2, 2, 0]);
  assert.deepEqual(tun.gro, { tcp: false, udp: true });
  assert.equal(tun.stats.groFallbacks.tcp, 1);
  assert.equal(warnings.length, 1);
  assert.equal(warnings[0]!.code, 'ERR_TUN_GRO_FALLBACK');
  assert.equal(warnings[0]!.errno, EINVAL);

  // Later TCP writes are not coalesced; UDP still is; no second warning.
  await tun.write([tcp(201), tcp(301), udp(), udp()]);
  assert.deepEqual(fake.written.slice(2).map((l) => l.map((b) => b.length)), [[10, 140], [10, 140], [10, 128, 100]]);
  assert.equal(warnings.length, 1);
  tun.setGro({ tcp: true }); // the application may turn it back on
  assert.equal(tun.gro.tcp, true);
  await tun.close();
});

test('EINVAL fallback for UDP turns off UDP GRO only', async () => {
  const { tun, fake } = await openFake();
  const warnings: VectunError[] = [];
  tun.on('warning', (w: VectunError) => warnings.push(w));
  fake.writeScript.push(-EINVAL);
  const r = await tun.write([udp(), udp(), udp()]);
  assert.equal(r.packets, 3);
  assert.deepEqual(tun.gro, { tcp: true, udp: false });
  assert.deepEqual(tun.stats.groFallbacks, { tcp: 0, udp: 1 });
  assert.equal(warnings.length, 1);
  assert.match(warnings[0]!.message, /UDP/);
  await tun.close();
});

test('TS-34: EAGAIN -> wait for writable -> the same list rewritten once (SG-4)', async () => {
  const { tun, fake } = await openFake();
  const packets = [udp(V4.B), udp(V4.C), tcp(1, 100, TCP_ACK, V4.C)];
  fake.writeScript.push(undefined, -EAGAIN);
  const pending = tun.write(packets);
  await tick();
  assert.equal(fake.attempts.length, 2, 'stopped at the EAGAIN list');
  assert.equal(fake.tunPoller.mask & WRITABLE, WRITABLE, 'waits for writability via the poller');
  assert.ok(fake.fire(WRITABLE));
  const r = await pending;
  assert.equal(fake.attempts.length, 4);
  assert.deepEqual(fake.attempts[1], fake.attempts[2], 'the same list again');
  assert.equal(fake.written.length, 3);
  assert.deepEqual([r.packets, r.writes, r.failures.length], [3, 3, 0]);
  assert.equal(tun.stats.writeWaits, 1);
  assert.equal(tun.stats.packetsWritten, 3, 'counted once');
  assert.equal(fake.tunPoller.mask & WRITABLE, 0, 'stops watching writability');
  await tun.close();
});

test('TS-34: EINTR -> immediate retry without waiting (SG-4)', async () => {
  const { tun, fake } = await openFake();
  fake.writeScript.push(-EINTR);
  const r = await tun.write([udp(V4.B)]);
  assert.equal(fake.attempts.length, 2);
  assert.equal(r.packets, 1);
  assert.equal(tun.stats.writeWaits, 0);
  await tun.close();
});

test('TS-35: EINVAL on write 1 of 3 -> writes 2 and 3 still done; failure reported per packet (SG-4, SG-5, D-6)', async () => {
  const { tun, fake } = await openFake();
  const packets = [udp(V4.B), udp(V4.C), tcp(1, 100, TCP_ACK, V4.C)];
  fake.writeScript.push(-EINVAL);
  const r = await tun.write(packets);
  assert.equal(fake.attempts.length, 3);
  assert.equal(fake.written.length, 2);
  assert.equal(r.packets, 2);
  assert.equal(r.bytes, 10 + 128 + 10 + 140);
  assert.equal(r.failures.length, 1);
  assert.equal(r.failures[0]!.index, 0);
  assert.equal(r.failures[0]!.error.errno, EINVAL);
  assert.equal(r.failures[0]!.error.syscall, 'writev');
  assert.equal(tun.stats.writeDrops['EINVAL'], 1);
  assert.equal(tun.stats.groFallbacks.udp, 0, 'a single-packet EINVAL is not a GRO problem');
  await tun.close();
});

test('D-6: a failed coalesced write reports each of its packets; partial writes are failures', async () => {
  const { tun, fake } = await openFake();
  fake.writeScript.push(-EIO, 50);
  const r = await tun.write([tcp(1), tcp(101), tcp(201, 100, TCP_ACK, V4.C)]);
  assert.deepEqual(r.failures.map((f) => [f.index, f.error.errno ?? f.error.code]).sort(), [[0, 5], [1, 5], [2, 'ERR_TUN_SYSCALL']]);
  assert.equal(r.packets, 0);
  await tun.close();
});

test('D-9: empty packets are dropped, reported and counted, not written', async () => {
  const { tun, fake } = await openFake();
  const r = await tun.write([new Uint8Array(0), udp()]);
  assert.equal(fake.written.length, 1);
  assert.deepEqual(r.failures.map((f) => [f.index, f.error.code]), [[0, 'ERR_PACKET_EMPTY']]);
  assert.equal(tun.stats.writeDrops['ERR_PACKET_EMPTY'], 1);
  await tun.close();
});

test('read: GSO split (TS-1), malformed frames dropped by code, stats', async () => {
  const { tun, fake } = await openFake();
  const drops: VectunError[] = [];
  tun.on('drop', (e: VectunError) => drops.push(e));
  const superPacket = frame(
    { needsCsum: true, gsoType: GSO_TCPV4, hdrLen: 40, gsoSize: 100, csumStart: 20, csumOffset: 16 },
    tcp(1, 200, TCP_ACK | TCP_PSH),
  );
  const plain = frame({ needsCsum: false, gsoType: GSO_NONE, hdrLen: 0, gsoSize: 0, csumStart: 0, csumOffset: 0 }, udp());
  const badType = Uint8Array.from(plain);
  badType[1] = 3; // UFO (HDR-6)
  fake.frames.push(superPacket, new Uint8Array(5), badType, new Uint8Array(10), plain);
  const batch = await tun.read();
  assert.deepEqual(batch.map((p) => p.length), [140, 140, 128]);
  assert.deepEqual(batch[2], udp());
  // TS-1: seq 1 and 101, PSH only on the last segment.
  const dv = new DataView(batch[1]!.buffer, batch[1]!.byteOffset);
  assert.equal(dv.getUint32(24), 101);
  assert.equal(batch[0]![33]! & TCP_PSH, 0);
  assert.equal(batch[1]![33]! & TCP_PSH, TCP_PSH);
  const s = tun.stats;
  assert.deepEqual(
    [s.reads, s.frames, s.superPackets, s.segments, s.packetsRead, s.bytesRead],
    [1, 5, 1, 2, 3, 140 + 140 + 128],
  );
  assert.deepEqual(s.readDrops, { ERR_VNET_HDR_SHORT: 1, ERR_GSO_TYPE_UNSUPPORTED: 1, ERR_PACKET_EMPTY: 1 });
  assert.deepEqual(drops.map((d) => d.code).sort(), ['ERR_GSO_TYPE_UNSUPPORTED', 'ERR_PACKET_EMPTY', 'ERR_VNET_HDR_SHORT']);
  await tun.close();
});

test('read waits for readability (no busy loop) and an all-dropped drain keeps waiting', async () => {
  const { tun, fake } = await openFake();
  let done = false;
  const pending = tun.read().then((b) => {
    done = true;
    return b;
  });
  await tick();
  assert.equal(fake.readCalls, 1);
  assert.equal(fake.tunPoller.mask & READABLE, READABLE);
  fake.frames.push(new Uint8Array(3)); // only a malformed frame
  fake.fire(READABLE);
  await tick();
  assert.equal(done, false);
  assert.equal(fake.readCalls, 3, 'one drain, then EAGAIN');
  fake.frames.push(frame({ needsCsum: false, gsoType: 0, hdrLen: 0, gsoSize: 0, csumStart: 0, csumOffset: 0 }, udp()));
  fake.fire(READABLE);
  assert.equal((await pending).length, 1);
  assert.equal(fake.tunPoller.mask & READABLE, READABLE, 'kept until the check phase: a reader may come back this tick');
  await tick();
  assert.equal(fake.tunPoller.mask, 0, 'nothing to wait for');
  await tun.close();
});

test('close with pending read and write: both reject ERR_TUN_CLOSED; idempotent; descriptors closed; "close" once', async () => {
  const { tun, fake } = await openFake();
  const read = tun.read();
  fake.writeScript.push(-EAGAIN);
  const write = tun.write([udp()]);
  const queued = tun.write([udp()]);
  await tick();
  let closes = 0;
  tun.on('close', () => closes++);
  const c1 = tun.close();
  const c2 = tun.close();
  assert.equal(c1, c2);
  await Promise.all([
    assert.rejects(read, isCode('ERR_TUN_CLOSED')),
    assert.rejects(write, isCode('ERR_TUN_CLOSED')),
    assert.rejects(queued, isCode('ERR_TUN_CLOSED')),
  ]);
  await c1;
  await tun.close();
  assert.equal(closes, 1);
  assert.equal(tun.closed, true);
  const socketFds = fake.opened.map((o) => o.fd);
  for (const fd of socketFds) assert.ok(fake.closedFds.includes(fd));
  assert.equal(fake.sockets.size, 0, 'netlink sockets closed');
  assert.ok(fake.pollers.every((p) => p.closed));
  await assert.rejects(tun.read(), isCode('ERR_TUN_CLOSED'));
  await assert.rejects(tun.write([]), isCode('ERR_TUN_CLOSED'));
  assert.throws(() => tun.setGro({ tcp: false }), isCode('ERR_TUN_CLOSED'));
});

test('async iterator yields batches and ends on close', async () => {
  const { tun, fake } = await openFake(undefined, { offload: false });
  fake.frames.push(udp());
  const seen: number[] = [];
  const loop = (async () => {
    for await (const batch of tun) {
      seen.push(batch.length);
      if (seen.length === 1) setImmediate(() => void tun.close());
    }
  })();
  await loop;
  assert.deepEqual(seen, [1]);
});

test('event mode: "packets" starts flowing; pause() stops reading, resume() continues', async () => {
  const { tun, fake } = await openFake(undefined, { offload: false });
  const got: number[] = [];
  fake.frames.push(udp());
  tun.on('packets', (batch: Uint8Array[]) => got.push(batch.length));
  await tick();
  await tick();
  assert.deepEqual(got, [1]);
  tun.pause();
  await tick();
  assert.equal(fake.tunPoller.mask & READABLE, 0, 'paused: not watching');
  fake.frames.push(udp(), udp());
  assert.equal(fake.fire(READABLE), false);
  await tick();
  assert.deepEqual(got, [1]);
  tun.resume();
  await tick();
  assert.deepEqual(got, [1, 2]);
  await tun.close();
});

test('link events: MTU change, up/down, moved, removed (pending read rejects ERR_TUN_REMOVED)', async () => {
  const { tun, fake } = await openFake();
  const events: unknown[] = [];
  for (const e of ['mtu', 'up', 'down', 'moved', 'removed']) tun.on(e, (v?: unknown) => events.push(v === undefined ? e : [e, v]));
  fake.linkEvent(16, 1400, 1);
  fake.linkEvent(16, 1400, 1); // no change, no event
  fake.linkEvent(16, 1400, 0);
  fake.linkEvent(16, 9000, 0, 99); // another interface
  assert.deepEqual(events, [['mtu', 1400], 'up', 'down']);
  assert.equal(tun.mtu, 1400);
  await tun.close();

  // Deleted: TUNGETIFF fails -> removed.
  const b = await openFake();
  const removedEvents: string[] = [];
  b.tun.on('removed', () => removedEvents.push('removed'));
  const read = b.tun.read();
  await tick();
  b.fake.removed = true;
  b.fake.linkEvent(17, 1500, 0);
  await assert.rejects(read, (err: unknown) => isCode('ERR_TUN_REMOVED')(err) && (err as VectunError).errno === EBADFD);
  await assert.rejects(b.tun.read(), isCode('ERR_TUN_REMOVED'));
  await assert.rejects(b.tun.write([udp()]), isCode('ERR_TUN_REMOVED'));
  await assert.rejects(b.tun.setMtu(1400), isCode('ERR_TUN_REMOVED'));
  assert.deepEqual(removedEvents, ['removed']);
  await b.tun.close();

  // Moved on a kernel without TUNGETDEVNETNS (before 5.2): TUNGETIFF still works -> moved
  // (not followed), I/O continues, link control rejects.
  const c = await openFake(undefined, { offload: false });
  const moves: TunMove[] = [];
  c.tun.on('moved', (m: TunMove) => moves.push(m));
  c.fake.linkEvent(17, 1500, 0);
  assert.deepEqual(moves, [{ followed: false, netnsInode: undefined, netns: undefined, name: 'fake0', ifindex: 0 }]);
  c.fake.frames.push(udp());
  assert.equal((await c.tun.read()).length, 1);
  await assert.rejects(c.tun.setUp(true), isCode('ERR_TUN_REMOVED'));
  await c.tun.close();
  assert.equal(c.fake.sockets.size, 0, 'netlink sockets closed');
});

test('moved (TUNGETDEVNETNS): sockets reopened in the new namespace, ifindex re-resolved, events and link control follow', async () => {
  const fake = fakeWith({ netns: true });
  const { tun } = await openFake(fake, { offload: false });
  await tun.setUp(true);
  const events: unknown[] = [];
  for (const e of ['mtu', 'up', 'down', 'moved', 'removed']) tun.on(e, (v?: unknown) => events.push(v === undefined ? e : [e, v]));
  const RED = 4026532999;
  fake.moveTo(RED, 12);
  // The move takes the link down (in the old namespace, before DELLINK; here folded into the lookup).
  const moved = await new Promise<TunMove>((resolve) => tun.once('moved', resolve));
  assert.deepEqual(moved, { followed: true, netnsInode: RED, netns: undefined, name: 'fake0', ifindex: 12 });
  assert.equal(tun.ifindex, 12);
  assert.equal(tun.isUp, false);
  assert.deepEqual(events, [['moved', moved], 'down']);
  // New sockets (events + control) opened in RED; the old ones and the namespace fd closed.
  assert.deepEqual(fake.nlOpens.slice(-2), [RED, RED]);
  assert.equal(fake.sockets.size, 2);
  assert.ok([...fake.sockets.values()].every((sock) => sock.netns === RED));
  assert.equal(fake.netnsFds.size, 0, 'namespace descriptor closed');
  // Link control now reaches the device in RED, with its new index.
  await tun.setMtu(1300);
  await tun.setUp(true);
  const last = fake.netlinkSent.at(-1)!;
  assert.equal(new DataView(last.buffer).getInt32(16 + 4, true), 12, 'request carries the new ifindex');
  assert.equal(fake.linkMtu, 1300);
  assert.equal(fake.linkFlags & 1, 1);
  // Changes made in RED arrive as events; events in the old namespace are not ours any more.
  fake.linkEvent(16, 1280, 1, 12, RED);
  fake.linkEvent(16, 9000, 0, 12, HOME_NETNS);
  assert.equal(tun.mtu, 1280);
  assert.deepEqual(events.slice(2), [['mtu', 1300], 'up', ['mtu', 1280]]);
  // Back home: followed again.
  fake.moveTo(HOME_NETNS, 7);
  const back = await new Promise<TunMove>((resolve) => tun.once('moved', resolve));
  assert.equal(back.netnsInode, HOME_NETNS);
  assert.equal(tun.ifindex, 7);
  await tun.addAddress('198.18.0.1/24');
  // Deleted while moved: 'removed', link control rejects.
  fake.moveTo(RED, 12);
  await new Promise<TunMove>((resolve) => tun.once('moved', resolve));
  fake.removed = true;
  fake.linkEvent(17, 1280, 0, 12, RED);
  assert.equal(events.at(-1), 'removed');
  await assert.rejects(tun.setMtu(1400), isCode('ERR_TUN_REMOVED'));
  await tun.close();
  assert.equal(fake.sockets.size, 0, 'netlink sockets closed');
});

test('fromFd on a queue of a device in another namespace: link sockets opened there, ifindex found by name', async () => {
  const fake = fakeWith({ netns: true });
  const RED = 4026533010;
  fake.deviceNetns = RED;
  fake.ifindex = 21;
  const fd = fake.tunOpen('fake0', 0x1001);
  const tun = await Tun.fromFd(fd, { binding: fake, offload: false });
  assert.equal(tun.ifindex, 21);
  assert.deepEqual(fake.nlOpens, [RED, RED]);
  assert.equal(fake.netnsFds.size, 0, 'namespace descriptor closed');
  await tun.setMtu(1400);
  assert.equal(fake.linkMtu, 1400);
  await tun.close();
});

test('moved: link control issued during the move waits for it; events during the lookup are replayed', async () => {
  const fake = fakeWith({ netns: true });
  const { tun } = await openFake(fake, { offload: false });
  const mtus: number[] = [];
  tun.on('mtu', (m: number) => mtus.push(m));
  const RED = 4026533001;
  fake.moveTo(RED, 3);
  // Issued before the lookup answered: must go to RED with index 3, not to the old socket.
  const setting = tun.setMtu(1400);
  // An event in RED while the lookup is pending.
  fake.linkEvent(16, 1350, 0, 3, RED);
  await setting;
  assert.equal(fake.linkMtu, 1400);
  const sent = fake.netlinkSent.at(-1)!;
  assert.equal(new DataView(sent.buffer).getUint16(4, true), 16);
  assert.equal(new DataView(sent.buffer).getInt32(16 + 4, true), 3);
  assert.deepEqual(mtus, [1350, 1400]);
  assert.equal(tun.mtu, 1400);
  await tun.close();
});

test('moved, then the lookup finds nothing (deleted right after the move): removed', async () => {
  const fake = fakeWith({ netns: true });
  const { tun } = await openFake(fake, { offload: false });
  let removed = 0;
  tun.on('removed', () => removed++);
  let moves = 0;
  tun.on('moved', () => moves++);
  // Gone before the RTM_GETLINK in the new namespace is answered (ENODEV).
  fake.beforeNetlinkRequest = (type) => {
    if (type === 18) fake.removed = true;
  };
  fake.moveTo(4026533002, 3);
  await assert.rejects(tun.setUp(true), isCode('ERR_TUN_REMOVED'));
  assert.equal(removed, 1);
  assert.equal(moves, 0);
  await assert.rejects(tun.setUp(true), isCode('ERR_TUN_REMOVED'));
  await tun.close();
});

test('removed detected by the read itself (poll error, EBADFD) without a link event', async () => {
  const { tun, fake } = await openFake();
  let removed = 0;
  tun.on('removed', () => removed++);
  const read = tun.read();
  await tick();
  fake.removed = true;
  fake.fire(0, -9 /* UV_EBADF after POLLERR */);
  await assert.rejects(read, isCode('ERR_TUN_REMOVED'));
  assert.equal(removed, 1);
  await tun.close();
});

test('link control sends rtnetlink requests and updates state', async () => {
  const { tun, fake } = await openFake();
  const mtus: number[] = [];
  tun.on('mtu', (m: number) => mtus.push(m));
  await tun.setMtu(1280);
  await tun.setUp(true);
  await tun.addAddress('198.18.0.1/24');
  await tun.addRoute('2001:2::/64');
  const types = fake.netlinkSent.map((m) => new DataView(m.buffer).getUint16(4, true));
  assert.deepEqual(types, [18, 16, 16, 20, 24]); // GETLINK at open, NEWLINK x2, NEWADDR, NEWROUTE
  assert.deepEqual(mtus, [1280]);
  assert.equal(tun.mtu, 1280);
  assert.equal(tun.isUp, true);
  await assert.rejects(tun.addAddress('198.18.0.1/33'), isCode('ERR_INVALID_ARG'));
  await assert.rejects(tun.setMtu(10), isCode('ERR_INVALID_ARG'));
  await tun.close();
});

test('options are validated with messages naming the option', async () => {
  const fake = new FakeBinding();
  await assert.rejects(Tun.open({ binding: fake, queues: 0 }), /options\.queues/);
  await assert.rejects(Tun.open({ binding: fake, batchSize: 5000 }), /options\.batchSize/);
  await assert.rejects(Tun.open({ binding: fake, name: 'x'.repeat(16) }), /options\.name/);
  await assert.rejects(Tun.open({ binding: fake, offload: 'yes' as unknown as boolean }), /options\.offload/);
  await assert.rejects(Tun.fromFd(-1, { binding: fake }), isCode('ERR_INVALID_ARG'));
  assert.equal(fake.opened.length, 0);
});

test('multi-queue: IFF_MULTI_QUEUE, queue(i) hands a descriptor over once, fromFd adopts it', async () => {
  const { tun, fake } = await openFake(undefined, { queues: 3 });
  assert.equal(tun.queues, 3);
  assert.ok(fake.opened.every((o) => (o.flags & 0x0100) !== 0));
  const q = tun.queue(2);
  assert.equal(q.fd, fake.opened[2]!.fd);
  assert.throws(() => tun.queue(2), isCode('ERR_INVALID_ARG'));
  assert.throws(() => tun.queue(0), isCode('ERR_INVALID_ARG'));
  await tun.close();
  assert.ok(!fake.closedFds.includes(q.fd), 'a handed-out queue is not closed by its old owner');
  const worker = await Tun.fromFd(q.fd, { binding: fake });
  assert.equal(worker.offload.tso4, true);
  await worker.close();
  assert.ok(fake.closedFds.includes(q.fd));
});

test('AbortSignal closes the device', async () => {
  const ac = new AbortController();
  const { tun } = await openFake(undefined, { signal: ac.signal });
  const read = tun.read();
  ac.abort();
  await assert.rejects(read, isCode('ERR_TUN_CLOSED'));
  assert.equal(tun.closed, true);
});

test('persist, owner and group are set with their ioctls on the first queue', async () => {
  const { tun, fake } = await openFake(undefined, { persist: true, owner: 1000, group: 1001 });
  const fd = fake.opened[0]!.fd;
  const calls = fake.ioctls.filter((c) => c.request !== 'TUNSETOFFLOAD' && c.request !== 'TUNSETVNETHDRSZ');
  assert.deepEqual(calls, [
    { fd, request: 'TUNSETPERSIST', value: 1 },
    { fd, request: 'TUNSETOWNER', value: 1000 },
    { fd, request: 'TUNSETGROUP', value: 1001 },
  ]);
  await tun.close();
  await assert.rejects(Tun.open({ binding: new FakeBinding(), owner: -1 }), /options\.owner/);
});

test('GRO off for both protocols: one writev per packet behind an all-zero header (GRO-A6, DEV-6)', async () => {
  const { tun, fake } = await openFake();
  tun.setGro({ tcp: false, udp: false });
  const packets = [tcp(1), tcp(101), udp(), udp()];
  const r = await tun.write(packets);
  assert.deepEqual(fake.written, packets.map((p) => [new Uint8Array(10), p]));
  assert.deepEqual([r.packets, r.writes], [4, 4]);
  await tun.close();
});

test('D-5: a frame that no longer fits the output area waits for the next read, whole', async () => {
  const { tun, fake } = await openFake(undefined, { batchSize: 3 });
  // gso_size 1: 40000 one-byte segments of 41 bytes each (1.64 MB) per frame; three exceed the 4 MiB output area.
  const big = frame(
    { needsCsum: true, gsoType: GSO_TCPV4, hdrLen: 40, gsoSize: 1, csumStart: 20, csumOffset: 16 },
    tcp(1, 40000),
  );
  fake.frames.push(big, big, big);
  const first = await tun.read();
  assert.equal(first.length, 80000);
  assert.equal(fake.readCalls, 1);
  const second = await tun.read();
  assert.equal(second.length, 40000, 'every segment of the third frame (D-5)');
  assert.equal(fake.readCalls, 1, 'served from the read arena without draining again');
  assert.equal(second[39999]!.length, 41);
  const s = tun.stats;
  assert.deepEqual([s.frames, s.superPackets, s.segments, s.reads], [3, 3, 120000, 2]);
  assert.deepEqual(s.readDrops, {});
  await tun.close();
});

test('read: slots and split output share one Arena, so segmentInto takes the fused copy+checksum path', async () => {
  const { tun, fake } = await openFake(undefined, { batchSize: 2 });
  let slots: Uint8Array | undefined;
  const readBatch = fake.readBatch.bind(fake);
  fake.readBatch = (fd, arena, slotSize, maxFrames, lengths) => {
    slots = arena;
    return readBatch(fd, arena, slotSize, maxFrames, lengths);
  };
  const superPacket = frame(
    { needsCsum: true, gsoType: GSO_TCPV4, hdrLen: 40, gsoSize: 100, csumStart: 20, csumOffset: 16 },
    tcp(1, 200),
  );
  fake.frames.push(superPacket, superPacket);
  const batch = await tun.read();
  assert.equal(batch.length, 4);
  assert.ok(slots !== undefined);
  assert.equal(slots.length, 2 * (10 + 65535), 'the addon sees exactly the read slots');
  for (const p of batch) {
    assert.equal(p.buffer, slots.buffer, 'segment in the same WebAssembly memory as the frames');
    assert.ok(p.byteOffset >= slots.byteOffset + slots.length, 'segments lie after the read slots');
  }
  assert.deepEqual(Arena.of(batch[0]!)?.bytes.buffer, slots.buffer);
  await tun.close();
});

test('checksumsVerified: 1 only for segments of well-formed GSO frames (RD-9), 0 for NONE frames and odd layouts', async () => {
  const { tun, fake } = await openFake();
  const gso = (p: Uint8Array, csumOffset = 16) =>
    frame({ needsCsum: true, gsoType: GSO_TCPV4, hdrLen: 40, gsoSize: 100, csumStart: 20, csumOffset }, p);
  const none = frame({ needsCsum: true, gsoType: GSO_NONE, hdrLen: 0, gsoSize: 0, csumStart: 20, csumOffset: 16 }, tcp(1, 100));
  const udpGso = frame({ needsCsum: true, gsoType: GSO_UDP_L4, hdrLen: 28, gsoSize: 100, csumStart: 20, csumOffset: 6 }, udp(V4.B, 200));
  // TCPV4 announced for a UDP packet: the split's pseudo-header (proto 6) is not the one CK-4 uses (17).
  fake.frames.push(gso(tcp(1, 200)), none, gso(udp(V4.B, 200)), udpGso, gso(tcp(1, 200), 6));
  const batch = await tun.read();
  const flags = tun.checksumsVerified;
  assert.equal(flags.length, batch.length);
  assert.deepEqual([...flags], [1, 1, 0, 0, 0, 1, 1, 0, 0]);
  assert.equal(batch.length, 9);
  await tun.close();
});

test('write(packets, { checksumsVerified }) reaches GRO: flagged packets skip CK-4, the default validates (GRO-T4)', async () => {
  const { tun, fake } = await openFake();
  const bad = (): Uint8Array[] => {
    const p = tcp(101);
    p[p.length - 1] = p[p.length - 1]! ^ 0xff;
    return [tcp(1), p];
  };
  await tun.write(bad());
  assert.deepEqual(fake.attempts.map((l) => l.map((b) => b.length)), [[10, 140], [10, 140]], 'default: not merged');
  fake.attempts.length = 0;
  await tun.write(bad(), { checksumsVerified: Uint8Array.of(1, 0) });
  assert.deepEqual(fake.attempts.map((l) => l.map((b) => b.length)), [[10, 140], [10, 140]], 'unflagged: validated');
  fake.attempts.length = 0;
  await tun.write(bad(), { checksumsVerified: true });
  assert.deepEqual(fake.attempts.map((l) => l.map((b) => b.length)), [[10, 140, 100]], 'claimed: taken at its word');
  fake.attempts.length = 0;
  // D-9 filtering shifts indices: the flags are then ignored and everything is validated.
  await tun.write([new Uint8Array(0), ...bad()], { checksumsVerified: Uint8Array.of(1, 1, 1) });
  assert.deepEqual(fake.attempts.map((l) => l.map((b) => b.length)), [[10, 140], [10, 140]]);
  await assert.rejects(tun.write([tcp(1)], { checksumsVerified: 1 as unknown as boolean }), isCode('ERR_INVALID_ARG'));
  await tun.close();
});

test('a reader back in the same tick keeps the readable watch: no stop/restart (two epoll_ctl) per batch', async () => {
  const { tun, fake } = await openFake();
  const masks: number[] = [];
  const pollSet = fake.pollSet.bind(fake);
  fake.pollSet = (handle, events) => {
    masks.push(events);
    return pollSet(handle, events);
  };
  const plain = (): Uint8Array => frame({ needsCsum: false, gsoType: GSO_NONE, hdrLen: 0, gsoSize: 0, csumStart: 0, csumOffset: 0 }, udp());
  let second: Promise<Uint8Array[]> | undefined;
  const first = tun.read().then((b) => {
    second = tun.read(); // like the bridge after its write
    return b;
  });
  await tick();
  fake.frames.push(plain());
  fake.fire(READABLE);
  assert.equal((await first).length, 1);
  await tick();
  assert.deepEqual(masks, [READABLE], 'armed once for both reads');
  fake.frames.push(plain());
  fake.fire(READABLE);
  assert.equal((await second!).length, 1);
  await tick();
  await tick();
  assert.deepEqual(masks, [READABLE, 0], 'stopped once nobody waits');
  await tun.close();
});
