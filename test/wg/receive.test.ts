/**
 * The receive path under arbitrary input (fast-check, time-boxed): whatever
 * arrives at the UDP port (garbage, truncations and bit flips of real
 * transport and handshake messages), nothing throws, nothing unauthenticated
 * reaches the TUN, every datagram is accounted for, and the session keeps
 * working afterwards.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { WgDevice } from '../../src/wg/device.js';
import { generatePrivateKey, publicKeyOf } from '../../src/wg/crypto.js';
import { UdpEndpoint } from '../../src/udp/address.js';
import { transportChecksumValid } from '../../src/core/checksum.js';
import { buildPacket, zeroChecksumUdpPayload } from '../core/packets.js';
import { ManualClock, MemoryNetwork, MemoryTunnel, settle } from './memory-net.js';

/** Devices A (198.18.100.1, knows B's endpoint) and B over a memory network, each routing `allowed` to the other. */
async function devicePair(allowedA: string[], allowedB: string[]): Promise<{ net: MemoryNetwork; a: WgDevice; b: WgDevice; ta: MemoryTunnel; tb: MemoryTunnel }> {
  const net = new MemoryNetwork();
  const clock = new ManualClock();
  const [ka, kb] = [generatePrivateKey(), generatePrivateKey()];
  const ta = new MemoryTunnel();
  const tb = new MemoryTunnel();
  const a = await WgDevice.create({ tunnel: ta, openSocket: net.factory('198.18.100.1'), clock, config: { privateKey: ka, listenPort: 51820, peers: [{ publicKey: publicKeyOf(kb), endpoint: { address: '198.18.100.2', port: 51820 }, allowedIps: allowedA }] } });
  const b = await WgDevice.create({ tunnel: tb, openSocket: net.factory('198.18.100.2'), clock, config: { privateKey: kb, listenPort: 51820, peers: [{ publicKey: publicKeyOf(ka), allowedIps: allowedB }] } });
  return { net, a, b, ta, tb };
}

test('arbitrary datagrams (garbage, truncated or bit-flipped real messages) are dropped and counted; the session survives', async () => {
  const { net, a, b, ta, tb } = await devicePair(['198.18.1.0/24'], ['198.18.0.0/24']);
  const pkt = (seq: number): Uint8Array => buildPacket({ version: 4, proto: 'udp', src: [198, 18, 0, 1], dst: [198, 18, 1, 1], payload: 200, seq, srcPort: 1, dstPort: 2 });
  try {
    ta.inject([pkt(1), pkt(2)]);
    await settle(20);
    assert.equal(tb.written.length, 2);
    const real = net.log.map((d) => d.data);
    const to = UdpEndpoint.of('198.18.100.2', 51820);
    const from = UdpEndpoint.of('198.18.100.9', 4444);
    const sock = net.sockets.get(to.key)!;
    const mutated = fc.tuple(fc.constantFrom(...real), fc.nat(), fc.integer({ min: 0, max: 7 }), fc.boolean()).map(([m, at, bit, cut]) => {
      const c = Uint8Array.from(m);
      if (cut) return c.subarray(0, at % c.length);
      c[at % c.length]! ^= 1 << bit;
      return c;
    });
    const datagram = fc.oneof(fc.uint8Array({ maxLength: 200 }), mutated);
    let sent = 0;
    const keepalivesBefore = b.stats.receive.keepalives;
    await fc.assert(fc.asyncProperty(fc.array(datagram, { minLength: 1, maxLength: 40 }), async (batch) => {
      for (const d of batch) sock.enqueue(Uint8Array.from(d), from);
      sent += batch.length;
      await settle(4);
      assert.equal(tb.written.length, 2, 'nothing forged or replayed was written');
    }), { numRuns: 60, interruptAfterTimeLimit: 5_000 });
    await settle(20);
    const s = b.stats;
    const dropped = Object.values(s.receive.drops).reduce((x, y) => x + y, 0);
    const h = s.handshake;
    const handshakeDropped = h.malformed + h.badMac1 + h.unknownIndex + h.badCookie + h.noPrivateKey + h.rateLimited + h.queueFull +
      h.cookieRepliesSent + Object.values(h.rejected).reduce((x, y) => x + y, 0);
    // Every datagram is a transport drop, a handshake message that was dropped, or a (replayed) keepalive that authenticated.
    assert.equal(dropped + handshakeDropped + (s.receive.keepalives - keepalivesBefore), sent, JSON.stringify(s));
    ta.inject([pkt(3)]);
    await settle(20);
    assert.equal(tb.written.length, 3, 'the session is unharmed');
  } finally {
    await a.close();
    await b.close();
  }
});

test('an IPv6 UDP checksum the sender left at 0 (wireguard-go sends 1 in 65,536) is written as 0xFFFF and counted; a zero that does not verify is left to the kernel', async () => {
  const { a, b, ta, tb } = await devicePair(['2001:2:0:1::/64', '198.18.1.0/24'], ['2001:2::/64', '198.18.0.0/24']);
  const src = [0x20, 0x01, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
  const dst = [0x20, 0x01, 0, 2, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1];
  const zeroSum = buildPacket({ version: 6, proto: 'udp', src, dst, srcPort: 4000, dstPort: 5000, payload: zeroChecksumUdpPayload(6, src, dst, 4000, 5000, 100) });
  assert.equal(zeroSum[46], 0, 'the crafted checksum computes to 0');
  assert.equal(zeroSum[47], 0);
  const unverified = buildPacket({ version: 6, proto: 'udp', src, dst, srcPort: 4000, dstPort: 5000, payload: 100, fill: 7 });
  unverified[46] = 0;
  unverified[47] = 0;
  const ipv4Zero = buildPacket({ version: 4, proto: 'udp', src: [198, 18, 0, 1], dst: [198, 18, 1, 1], srcPort: 4000, dstPort: 5000, payload: 100 });
  ipv4Zero[26] = 0;
  ipv4Zero[27] = 0;
  try {
    ta.inject([zeroSum, unverified, ipv4Zero]);
    await settle(20);
    assert.equal(tb.written.length, 3, 'all three delivered to the TUN');
    const [fixed, leftAlone, v4] = tb.written as [Uint8Array, Uint8Array, Uint8Array];
    assert.deepEqual([fixed[46], fixed[47]], [0xff, 0xff], 'stored as 0xFFFF');
    assert.ok(transportChecksumValid(fixed, 40, 17), 'and it verifies');
    assert.deepEqual(fixed.subarray(48), zeroSum.subarray(48), 'payload unchanged');
    assert.deepEqual(leftAlone, unverified, 'a zero that does not verify is not made to look valid');
    assert.deepEqual(v4, ipv4Zero, 'IPv4: 0 means no checksum, left alone');
    assert.equal(b.stats.receive.udp6ChecksumsRepaired, 1);
    assert.equal(a.stats.receive.udp6ChecksumsRepaired, 0);
  } finally {
    await a.close();
    await b.close();
  }
});
