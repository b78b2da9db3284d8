/**
 * Two WgDevices over in-memory TUN and UDP sides (no root): the handshake
 * (whitepaper §5.4.2-§5.4.5), data both ways (§5.4.6), replay, forgery and
 * malformed-packet drops that leave the session unharmed, cryptokey routing
 * on receive (§2), rekey and keypair rotation (§6.1-§6.2), keepalives (§6.5),
 * roaming (§2), staging while a handshake is pending, cookies under load
 * (§5.3), and the WgControl update semantics (wireguard-go IpcSet).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { VectunError } from '../../src/errors.js';
import { WgDevice, UNDER_LOAD_QUEUE } from '../../src/wg/device.js';
import { generatePrivateKey, publicKeyOf } from '../../src/wg/crypto.js';
import { createTransportCipher } from '../../src/wg/aead.js';
import { MAX_STAGED_PACKETS, type PeerKeypair } from '../../src/wg/peer.js';
import { REKEY_AFTER_TIME, REJECT_AFTER_TIME } from '../../src/wg/constants.js';
import { buildPacket } from '../core/packets.js';
import { ManualClock, MemoryNetwork, MemoryTunnel, settle, type MemorySocket } from './memory-net.js';

const A_IP = [198, 18, 0, 1];
const B_IP = [198, 18, 1, 1];
const A_WIRE = '198.18.100.1';
const B_WIRE = '198.18.100.2';

function packet(src: readonly number[], dst: readonly number[], payload = 1000, seq = 1): Uint8Array {
  return buildPacket({ version: 4, proto: 'udp', src, dst, payload, seq, srcPort: 1000, dstPort: 2000 });
}

interface Pair {
  a: WgDevice;
  b: WgDevice;
  ta: MemoryTunnel;
  tb: MemoryTunnel;
  net: MemoryNetwork;
  clock: ManualClock;
  keys: { a: Uint8Array; b: Uint8Array; pa: Uint8Array; pb: Uint8Array };
  sockets: { a: MemorySocket[]; b: MemorySocket[] };
  close(): Promise<void>;
}

async function pair(options: { cipherA?: 'native' | 'node'; bEndpointKnown?: boolean } = {}): Promise<Pair> {
  const net = new MemoryNetwork();
  const clock = new ManualClock();
  const ka = generatePrivateKey();
  const kb = generatePrivateKey();
  const pa = publicKeyOf(ka);
  const pb = publicKeyOf(kb);
  const ta = new MemoryTunnel();
  const tb = new MemoryTunnel();
  const fa = net.factory(A_WIRE);
  const fb = net.factory(B_WIRE);
  const a = await WgDevice.create({
    tunnel: ta, openSocket: fa, clock,
    ...(options.cipherA !== undefined ? { cipher: createTransportCipher({ implementation: options.cipherA }) } : {}),
    config: { privateKey: ka, listenPort: 51820, peers: [{ publicKey: pb, endpoint: { address: B_WIRE, port: 51821 }, allowedIps: ['198.18.1.0/24'] }] },
  });
  const b = await WgDevice.create({
    tunnel: tb, openSocket: fb, clock,
    config: {
      privateKey: kb, listenPort: 51821,
      peers: [{ publicKey: pa, allowedIps: ['198.18.0.0/24'], ...(options.bEndpointKnown === true ? { endpoint: { address: A_WIRE, port: 51820 } } : {}) }],
    },
  });
  return {
    a, b, ta, tb, net, clock, keys: { a: ka, b: kb, pa, pb }, sockets: { a: fa.opened, b: fb.opened },
    close: async () => {
      await a.close();
      await b.close();
    },
  };
}

/** A sends one packet to B; the handshake runs; returns when B wrote it. */
async function connect(p: Pair): Promise<void> {
  p.ta.inject([packet(A_IP, B_IP, 500, 1)]);
  await settle(20);
  assert.equal(p.tb.written.length, 1, 'the first packet arrives after the handshake');
}

test('§5.4.2-§5.4.6: a packet to a peer with no session is staged, the handshake runs, then it arrives intact', async () => {
  const p = await pair();
  try {
    const first = packet(A_IP, B_IP, 500, 1);
    p.ta.inject([first]);
    await settle(20);
    assert.equal(p.net.ofType(1).length, 1, 'one initiation');
    assert.equal(p.net.ofType(2).length, 1, 'one response');
    assert.deepEqual(p.tb.written, [first]);
    assert.equal(p.a.stats.handshake.completed, 1);
    assert.equal(p.b.stats.handshake.completed, 1, 'the responder completes on the first transport message (key confirmation)');
    const transport = p.net.ofType(4);
    assert.equal(transport.length, 1);
    // §5.4.6: header 16 + ciphertext padded to 16 + tag 16.
    assert.equal(transport[0]!.data.length, 16 + Math.ceil(first.length / 16) * 16 + 16);
    // B learnt A's endpoint from the authenticated initiation.
    assert.deepEqual(p.b.status().peers[0]!.endpoint, { address: A_WIRE, port: 51820 });
    assert.ok(p.a.status().peers[0]!.lastHandshake !== null);
  } finally {
    await p.close();
  }
});

test('§5.4.6: data both ways, a 64-packet batch sealed in one call; padding stripped by the inner length', async () => {
  for (const cipherA of ['native', 'node'] as const) {
    const p = await pair({ cipherA });
    try {
      await connect(p);
      const batch = Array.from({ length: 64 }, (_, i) => packet(A_IP, B_IP, 1 + i * 20, i + 2));
      p.ta.inject(batch);
      const back = Array.from({ length: 10 }, (_, i) => packet(B_IP, A_IP, 1392, i));
      p.tb.inject(back);
      await settle(20);
      assert.deepEqual(p.tb.written.slice(1), batch, `${cipherA}: A -> B`);
      assert.deepEqual(p.ta.written, back, `${cipherA}: B -> A`);
      const sizes = p.net.ofType(4).map((d) => d.data.length);
      // Padded to a multiple of 16, but never beyond the MTU (1420 is not a multiple of 16).
      for (const s of sizes) assert.ok((s - 32) % 16 === 0 || s - 32 === 1420, `message of ${s} bytes`);
      assert.ok(sizes.includes(1420 + 32), 'MTU-sized packets are not padded beyond the MTU');
      assert.equal(p.a.stats.send.drops.noRoute, 0);
      const st = p.b.status().peers[0]!;
      assert.ok(st.rxBytes > 0 && st.txBytes > 0);
    } finally {
      await p.close();
    }
  }
});

test('§5.4.6: a replayed transport message is dropped and counted; the session goes on', async () => {
  const p = await pair();
  try {
    await connect(p);
    const captured = p.net.ofType(4)[0]!;
    p.net.deliver(captured);
    p.net.deliver(captured);
    await settle();
    assert.equal(p.tb.written.length, 1, 'nothing new written');
    assert.equal(p.b.stats.receive.drops.replayed, 2);
    p.ta.inject([packet(A_IP, B_IP, 300, 9)]);
    await settle();
    assert.equal(p.tb.written.length, 2);
  } finally {
    await p.close();
  }
});

test('forged, truncated, garbage and unknown-index messages are dropped and counted without touching the session', async () => {
  const p = await pair();
  try {
    await connect(p);
    const good = p.net.ofType(4)[0]!;
    const from = good.from;
    const to = good.to;
    const flipped = Uint8Array.from(good.data);
    flipped[40]! ^= 0x80;
    const wrongIndex = Uint8Array.from(good.data);
    wrongIndex[4]! ^= 0xff;
    const peerB = p.b.peer(p.keys.pa)!;
    const before = { endpoint: peerB.endpoint, rx: peerB.counters.rxBytes, current: peerB.keypairs.current };
    const evil = { address: '198.18.100.66', port: 9999 };
    const evilFrom = (await import('../../src/udp/address.js')).UdpEndpoint.of(evil.address, evil.port);
    for (const data of [flipped, wrongIndex, good.data.subarray(0, 31), new Uint8Array([4, 0, 0]), new Uint8Array([9, 0, 0, 0, 1, 2]), new Uint8Array([4, 1, 0, 0, ...new Array(40).fill(0)])]) {
      p.net.deliver({ data, from: evilFrom, to });
    }
    void from;
    await settle();
    const d = p.b.stats.receive.drops;
    assert.equal(d.authFailed, 1);
    assert.equal(d.unknownIndex, 1);
    assert.equal(d.malformed, 4);
    assert.equal(p.tb.written.length, 1);
    // Unauthenticated packets changed nothing: endpoint (no roaming to the forger), counters, keypair.
    assert.equal(peerB.endpoint, before.endpoint);
    assert.equal(peerB.counters.rxBytes, before.rx);
    assert.equal(peerB.keypairs.current, before.current);
    p.ta.inject([packet(A_IP, B_IP, 300, 9)]);
    await settle();
    assert.equal(p.tb.written.length, 2, 'the session is unharmed');
  } finally {
    await p.close();
  }
});

test('§2 cryptokey routing: a decrypted packet whose source is outside the peer\'s AllowedIPs is dropped; no route on send is counted', async () => {
  const p = await pair();
  try {
    await connect(p);
    p.tb.inject([packet([198, 18, 9, 9], A_IP, 100), packet(B_IP, A_IP, 100)]);
    await settle();
    assert.equal(p.ta.written.length, 1);
    assert.equal(p.a.stats.receive.drops.sourceNotAllowed, 1);
    p.ta.inject([packet(A_IP, [198, 18, 50, 1], 100), new Uint8Array([0x45, 0, 0])]);
    await settle();
    assert.equal(p.a.stats.send.drops.noRoute, 1);
    assert.equal(p.a.stats.send.drops.malformed, 1);
  } finally {
    await p.close();
  }
});

test('§6.5: a keepalive answers received data after KEEPALIVE_TIMEOUT; it is counted, not written', async () => {
  const p = await pair();
  try {
    await connect(p);
    assert.equal(p.b.peer(p.keys.pa)!.counters.keepalivesSent, 0);
    await p.clock.advance(10_500);
    assert.equal(p.b.peer(p.keys.pa)!.counters.keepalivesSent, 1);
    assert.equal(p.a.stats.receive.keepalives, 1);
    assert.equal(p.ta.written.length, 0);
  } finally {
    await p.close();
  }
});

test('§6.2 rekey: after REKEY_AFTER_TIME the initiator handshakes anew on send; the old keypair still receives, traffic continues', async () => {
  const p = await pair();
  try {
    await connect(p);
    const peerA = p.a.peer(p.keys.pb)!;
    const first = peerA.keypairs.current!;
    await p.clock.advance(REKEY_AFTER_TIME + 1000);
    p.ta.inject([packet(A_IP, B_IP, 200, 2)]);
    await settle(20);
    assert.equal(p.net.ofType(1).length, 2, 'a second initiation');
    assert.notEqual(peerA.keypairs.current, first, 'rotated');
    assert.equal(peerA.keypairs.previous, first, 'the old keypair is kept as previous');
    // The packet went out with the old keypair (still valid), so it arrived; new traffic uses the new one.
    p.ta.inject([packet(A_IP, B_IP, 200, 3)]);
    await settle(20);
    assert.equal(p.tb.written.length, 3);
    const peerB = p.b.peer(p.keys.pa)!;
    assert.equal(peerB.keypairs.current!.localIndex, peerA.keypairs.current!.remoteIndex, 'B confirmed the new keypair');
    // REJECT_AFTER_TIME: a keypair that old neither sends nor receives.
    await p.clock.advance(REJECT_AFTER_TIME + 1000);
    assert.equal(peerA.sendingKeypair(p.clock.now()), null);
  } finally {
    await p.close();
  }
});

test('§2 roaming: when the peer\'s authenticated packets come from a new port, replies follow it', async () => {
  const p = await pair();
  try {
    await connect(p);
    await p.b.update({ listenPort: 51999 });
    assert.equal(p.b.listenPort, 51999);
    assert.equal(p.sockets.b[0]!.closed, true, 'the old socket is closed after the rebind');
    p.tb.inject([packet(B_IP, A_IP, 100, 1)]);
    await settle();
    assert.equal(p.ta.written.length, 1);
    assert.deepEqual(p.a.status().peers[0]!.endpoint, { address: B_WIRE, port: 51999 });
    p.ta.inject([packet(A_IP, B_IP, 100, 5)]);
    await settle();
    assert.equal(p.tb.written.length, 2, 'A replied to the new endpoint');
  } finally {
    await p.close();
  }
});

test('staged packets are bounded (1024, the oldest dropped) and sent in order once the handshake completes', async () => {
  const p = await pair();
  try {
    p.net.filter = (d) => (d.data[0] === 1 ? null : d); // initiations are lost
    const total = MAX_STAGED_PACKETS + 10;
    const batch = Array.from({ length: total }, (_, i) => packet(A_IP, B_IP, 40, i));
    p.ta.inject(batch);
    await settle();
    const peerA = p.a.peer(p.keys.pb)!;
    assert.equal(peerA.staged.length, MAX_STAGED_PACKETS);
    assert.equal(peerA.counters.stagedDropped, 10);
    p.net.filter = undefined;
    await p.clock.advance(5_400); // REKEY_TIMEOUT + jitter: the retransmission
    await settle(30);
    assert.equal(p.tb.written.length, MAX_STAGED_PACKETS);
    assert.deepEqual(p.tb.written[0], batch[10]);
    assert.deepEqual(p.tb.written[MAX_STAGED_PACKETS - 1], batch[total - 1]);
  } finally {
    await p.close();
  }
});

test('§5.3 under load: an initiation without a valid mac2 gets a cookie reply; the next one carries mac2 and completes', async () => {
  const p = await pair();
  try {
    p.a.initiateHandshake(p.keys.pb);
    await settle(10);
    assert.equal(p.a.stats.handshake.completed, 1);
    const init = p.net.ofType(1)[0]!;
    assert.ok(init.data.subarray(132).every((b) => b === 0), 'no cookie yet: mac2 is zero');
    const sock = p.net.sockets.get(init.to.key)!;
    // More queued handshakes than the load threshold: replays of the initiation, no mac2.
    for (let i = 0; i < UNDER_LOAD_QUEUE + 20; i++) sock.enqueue(Uint8Array.from(init.data), init.from);
    await settle(40);
    assert.ok(p.b.stats.handshake.cookieRepliesSent >= UNDER_LOAD_QUEUE, 'each got a cookie reply instead of a DH');
    assert.equal(p.b.stats.handshake.responsesSent, 1, 'none reached the Noise layer (only the first, before the load)');
    assert.ok(p.a.stats.handshake.cookiesAccepted > 0, 'A took the cookie');
    // Next initiation (after REKEY_TIMEOUT): B is still under load (junk ahead of it in the queue).
    await p.clock.advance(5_100);
    const junk = new Uint8Array(148);
    junk[0] = 1;
    p.net.filter = (d) => {
      if (d.data[0] === 1) for (let i = 0; i < UNDER_LOAD_QUEUE + 5; i++) sock.enqueue(Uint8Array.from(junk), d.from);
      return d;
    };
    p.a.initiateHandshake(p.keys.pb);
    await settle(40);
    const second = p.net.ofType(1).at(-1)!;
    assert.ok(second.data.subarray(132).some((b) => b !== 0), 'the cookie is used for mac2');
    assert.ok(p.b.stats.handshake.badMac1 >= UNDER_LOAD_QUEUE, 'junk failed mac1');
    assert.equal(p.a.stats.handshake.completed, 2, 'the handshake with mac2 completed under load');
  } finally {
    await p.close();
  }
});

test('WgControl: status reflects the configuration; update_only, remove, replace_allowed_ips, replace_peers (wireguard-go IpcSet)', async () => {
  const p = await pair();
  try {
    const s = p.a.status();
    assert.deepEqual(s.privateKey, p.keys.a);
    assert.deepEqual(s.publicKey, p.keys.pa);
    assert.equal(s.listenPort, 51820);
    assert.equal(s.peers.length, 1);
    assert.deepEqual(s.peers[0]!.allowedIps, ['198.18.1.0/24']);
    assert.equal(s.peers[0]!.lastHandshake, null);
    const other = publicKeyOf(generatePrivateKey());
    await p.a.update({ peers: [{ publicKey: other, updateOnly: true, allowedIps: ['198.18.5.0/24'] }] });
    assert.equal(p.a.status().peers.length, 1, 'update_only does not create');
    await p.a.update({ peers: [{ publicKey: other, allowedIps: ['198.18.5.0/24', '2001:2:0:5::/64'], persistentKeepalive: 25 }] });
    assert.equal(p.a.status().peers.length, 2);
    await p.a.update({ peers: [{ publicKey: other, replaceAllowedIps: true, allowedIps: ['198.18.6.0/24'] }] });
    assert.deepEqual(p.a.status().peers.find((x) => Buffer.from(x.publicKey).equals(Buffer.from(other)))!.allowedIps, ['198.18.6.0/24']);
    await p.a.update({ peers: [{ publicKey: other, remove: true }] });
    assert.equal(p.a.status().peers.length, 1);
    await p.a.update({ replacePeers: true, peers: [] });
    assert.equal(p.a.status().peers.length, 0);
    await assert.rejects(p.a.update({ peers: [{ publicKey: other, allowedIps: ['198.18.0.0/99'] }] }),
      (e: unknown) => e instanceof VectunError && e.code === 'ERR_WG_CONFIG' && e.errno === 22);
    await assert.rejects(p.a.update({ privateKey: new Uint8Array(3) }),
      (e: unknown) => e instanceof VectunError && e.code === 'ERR_WG_CONFIG' && e.errno === 22);
  } finally {
    await p.close();
  }
});

test('WgControl: a listen port in use fails with ERR_WG_CONFIG errno EADDRINUSE and keeps the old socket; fwmark re-binds', async () => {
  const p = await pair();
  try {
    // B's wire address is another host; occupy a port on A's address with a third socket.
    await p.net.factory(A_WIRE)(52000, 0);
    await assert.rejects(p.a.update({ listenPort: 52000 }), (e: unknown) => e instanceof VectunError && e.code === 'ERR_WG_CONFIG' && e.errno === 98);
    assert.equal(p.a.listenPort, 51820);
    assert.equal(p.sockets.a[0]!.closed, false);
    await p.a.update({ fwmark: 7 });
    assert.equal(p.a.status().fwmark, 7);
    assert.equal(p.sockets.a.at(-1)!.fwmark, 7);
    assert.equal(p.a.listenPort, 51820);
    // A kernel-chosen port is kept across a fwmark change (wireguard-go stores the bound port).
    await p.a.update({ listenPort: 0 });
    const chosen = p.a.listenPort;
    assert.notEqual(chosen, 0);
    await p.a.update({ fwmark: 0 });
    assert.equal(p.a.listenPort, chosen);
    assert.equal(p.a.status().fwmark, 0);
    await p.a.update({ listenPort: 51820 });
    await connect(p);
  } finally {
    await p.close();
  }
});

test('stats: kernel receive-buffer drops (SO_RXQ_OVFL) are reported, and kept across a re-bind', async () => {
  const p = await pair();
  try {
    assert.equal(p.a.stats.receive.socketDrops, 0);
    p.sockets.a[0]!.stats.receiveDrops = 5;
    assert.equal(p.a.stats.receive.socketDrops, 5);
    await p.a.update({ listenPort: 52001 });
    assert.equal(p.sockets.a[0]!.closed, true);
    assert.equal(p.a.stats.receive.socketDrops, 5, 'the closed socket\'s drops stay counted');
    p.sockets.a.at(-1)!.stats.receiveDrops = 2;
    assert.equal(p.a.stats.receive.socketDrops, 7);
    await p.a.update({ fwmark: 3 }); // same port: closed before the new one opens
    assert.equal(p.a.stats.receive.socketDrops, 7);
  } finally {
    await p.close();
  }
});

test('a removed peer stops traffic at once; its keys are erased', async () => {
  const p = await pair();
  try {
    await connect(p);
    const peerA = p.a.peer(p.keys.pb)!;
    const kp = peerA.keypairs.current as PeerKeypair;
    await p.a.update({ peers: [{ publicKey: p.keys.pb, remove: true }] });
    assert.equal(kp.sendTransport.destroyed, true);
    assert.ok(kp.sendKey.every((b) => b === 0));
    p.ta.inject([packet(A_IP, B_IP, 100, 3)]);
    p.tb.inject([packet(B_IP, A_IP, 100, 3)]);
    await settle();
    assert.equal(p.tb.written.length, 1);
    assert.equal(p.ta.written.length, 0);
    assert.equal(p.a.stats.send.drops.noRoute, 1);
    assert.equal(p.a.stats.receive.drops.unknownIndex, 1);
  } finally {
    await p.close();
  }
});

test('close is idempotent, erases keys, closes both sides; later updates fail', async () => {
  const p = await pair();
  await connect(p);
  const kp = p.a.peer(p.keys.pb)!.keypairs.current as PeerKeypair;
  await Promise.all([p.a.close(), p.a.close()]);
  assert.equal(p.ta.closed, true);
  assert.equal(p.sockets.a[0]!.closed, true);
  assert.equal(kp.receiveTransport.destroyed, true);
  await assert.rejects(p.a.update({ listenPort: 1 }), (e: unknown) => e instanceof VectunError && e.code === 'ERR_WG_CONFIG');
  await p.b.close();
});

test('§2 many peers: packets are routed per peer by longest-prefix match (v4 and v6 inner), one sealed batch per peer', async () => {
  const net = new MemoryNetwork();
  const clock = new ManualClock();
  const keys = [generatePrivateKey(), generatePrivateKey(), generatePrivateKey()];
  const pubs = keys.map((k) => publicKeyOf(k));
  const tunnels = [new MemoryTunnel(), new MemoryTunnel(), new MemoryTunnel()];
  const wires = ['198.18.100.1', '198.18.100.2', '198.18.100.3'];
  const v6 = (host: number): number[] => [0x20, 0x01, 0, 2, 0, 0, 0, host, 0, 0, 0, 0, 0, 0, 0, 1];
  const hub = await WgDevice.create({
    tunnel: tunnels[0], openSocket: net.factory(wires[0]!), clock,
    config: {
      privateKey: keys[0], listenPort: 51820,
      peers: [
        { publicKey: pubs[1]!, endpoint: { address: wires[1]!, port: 51820 }, allowedIps: ['198.18.0.0/16', '2001:2:0:1::/64'] },
        { publicKey: pubs[2]!, endpoint: { address: wires[2]!, port: 51820 }, allowedIps: ['198.18.2.0/24', '2001:2:0:2::/64'] },
      ],
    },
  });
  const spokes = await Promise.all([1, 2].map((i) => WgDevice.create({
    tunnel: tunnels[i], openSocket: net.factory(wires[i]!), clock,
    config: { privateKey: keys[i], listenPort: 51820, peers: [{ publicKey: pubs[0]!, allowedIps: ['198.18.0.0/24', '2001:2:0:0::/64'] }] },
  })));
  try {
    const hubIp = [198, 18, 0, 1];
    const toOne = packet(hubIp, [198, 18, 1, 7], 100, 1);
    const toTwo = packet(hubIp, [198, 18, 2, 7], 100, 2); // the /24 beats the /16
    const six = (dst: number): Uint8Array => buildPacket({ version: 6, proto: 'udp', src: v6(0), dst: v6(dst), payload: 64, srcPort: 1, dstPort: 2 });
    tunnels[0]!.inject([toOne, toTwo, six(1), six(2)]);
    await settle(30);
    tunnels[0]!.inject([toOne, toTwo, toTwo, six(2)]);
    await settle(30);
    assert.deepEqual(tunnels[1]!.written, [toOne, six(1), toOne]);
    assert.deepEqual(tunnels[2]!.written, [toTwo, six(2), toTwo, toTwo, six(2)]);
    // The second batch went as one sealed batch per peer.
    assert.equal(hub.stats.send.batches, 2);
  } finally {
    await hub.close();
    for (const s of spokes) await s.close();
  }
});

test('§6.5 persistent keepalive: sent every interval while idle, switched on with a keepalive at once', async () => {
  const p = await pair();
  try {
    await connect(p);
    await p.a.update({ peers: [{ publicKey: p.keys.pb, persistentKeepalive: 25 }] });
    await settle();
    const peerA = p.a.peer(p.keys.pb)!;
    assert.equal(peerA.counters.keepalivesSent, 1, 'one at once');
    // B owes A a keepalive for the first packet (KEEPALIVE_TIMEOUT); receiving it restarts A's interval.
    await p.clock.advance(10_500);
    assert.equal(peerA.counters.keepalivesSent, 1);
    await p.clock.advance(25_000);
    assert.equal(peerA.counters.keepalivesSent, 2);
    await p.clock.advance(25_000);
    assert.equal(peerA.counters.keepalivesSent, 3);
    assert.equal(p.b.stats.receive.keepalives, 3);
    assert.equal(p.a.stats.receive.keepalives, 1);
    assert.equal(p.tb.written.length, 1, 'keepalives are not written to the TUN');
  } finally {
    await p.close();
  }
});

test('§6.4: without an answer the initiation is retransmitted, then given up after REKEY_ATTEMPT_TIME; staged packets go', async () => {
  const p = await pair();
  try {
    p.net.filter = (d) => (d.data[0] === 1 ? null : d);
    p.ta.inject([packet(A_IP, B_IP, 100, 1)]);
    await settle();
    const peerA = p.a.peer(p.keys.pb)!;
    assert.equal(peerA.staged.length, 1);
    await p.clock.advance(110_000); // 1 + 18 attempts, REKEY_TIMEOUT + jitter (< 334 ms) apart
    const sent = peerA.counters.initiationsSent;
    assert.ok(sent >= 18 && sent <= 20, `${sent} initiations in REKEY_ATTEMPT_TIME`);
    assert.equal(peerA.staged.length, 0, 'staged packets dropped on giving up');
    assert.equal(peerA.counters.stagedExpired, 1);
    await p.clock.advance(30_000);
    assert.equal(peerA.counters.initiationsSent, sent, 'no more attempts');
  } finally {
    await p.close();
  }
});

test('§6.1: key material is erased REJECT_AFTER_TIME * 3 after the last session', async () => {
  const p = await pair();
  try {
    await connect(p);
    const peerA = p.a.peer(p.keys.pb)!;
    const kp = peerA.keypairs.current as PeerKeypair;
    p.net.filter = () => null; // silence: no new handshake can complete
    await p.clock.advance(REJECT_AFTER_TIME * 3 + 60_000);
    assert.equal(peerA.keypairs.current, null);
    assert.equal(kp.sendTransport.destroyed, true);
  } finally {
    await p.close();
  }
});
