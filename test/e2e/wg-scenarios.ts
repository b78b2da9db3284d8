/**
 * Shared steps of the WireGuard e2e suites: traffic through a
 * {@link WgTopology} in both directions over both tunnel address families,
 * verified end to end (TCP sha256, UDP per datagram), and handshake checks
 * through `wg show dump`. Bounded in bytes and time.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { VectunError } from '../../src/errors.js';
import { tcpTransfer, udpTransfer } from '../../src/lab/traffic.js';
import { wgDump, wgEndpointOf, type WgSide, type WgTopology } from '../../src/lab/wg.js';

export const WG_TCP_BYTES = 8 << 20;
export const WG_UDP_COUNT = 2_000;
/** Fits the tunnel MTU 1420 over IPv6: 1420 - 40 - 8. */
export const WG_UDP_SIZE = 1372;
export const WG_TRANSFER_TIMEOUT_MS = 60_000;

/** Sends `bytes` over TCP from `from` to `to`'s tunnel address and asserts the same sha256 arrived. */
export async function assertTcpThrough(from: WgSide, to: WgSide, family: 4 | 6, bytes = WG_TCP_BYTES, seed = 1): Promise<void> {
  const r = await tcpTransfer({ from: from.ns, to: to.ns, address: family === 4 ? to.v4 : to.v6, bytes, timeoutMs: WG_TRANSFER_TIMEOUT_MS, seed });
  assert.equal(r.received.bytes, bytes, 'every byte arrived');
  assert.equal(r.received.sha256, r.sent.sha256, 'same sha256 on both ends');
  assert.ok(r.intact);
}

/** Sends UDP datagrams through the tunnel and asserts every one arrived once, intact. */
export async function assertUdpThrough(from: WgSide, to: WgSide, family: 4 | 6, count = WG_UDP_COUNT, seed = 2): Promise<void> {
  const r = await udpTransfer({
    from: from.ns,
    to: to.ns,
    address: family === 4 ? to.v4 : to.v6,
    count,
    size: WG_UDP_SIZE,
    window: 32,
    timeoutMs: WG_TRANSFER_TIMEOUT_MS,
    seed,
  });
  assert.equal(r.received.corrupt, 0, 'no corrupt datagram');
  assert.equal(r.received.duplicates, 0, 'no duplicate');
  assert.equal(r.received.missing, 0, 'none missing');
  assert.equal(r.received.received, count);
}

/** The one peer of `side` as `wg show dump` reports it. */
export async function onlyPeer(side: WgSide): Promise<Awaited<ReturnType<typeof wgDump>>['peers'][number]> {
  const dump = await wgDump(side.ns, side.ifname);
  assert.equal(dump.peers.length, 1, `${side.ifname} has one peer`);
  return dump.peers[0]!;
}

/** Polls `check` every 100 ms until it returns a value, or fails after `timeoutMs`. */
export async function eventually<T>(what: string, timeoutMs: number, check: () => Promise<T | undefined>): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (Date.now() > deadline) assert.fail(`${what}: not within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/**
 * Sends `count` small UDP datagrams through the tunnel (bounded: 3 s) and
 * returns how many arrived intact; 0 when none did (the transfer times out).
 */
export async function udpProbe(from: WgSide, to: WgSide, family: 4 | 6 = 4, count = 5): Promise<number> {
  try {
    const r = await udpTransfer({ from: from.ns, to: to.ns, address: family === 4 ? to.v4 : to.v6, count, size: 64, window: count, timeoutMs: 3_000 });
    return r.received.received - r.received.corrupt;
  } catch (err) {
    if (err instanceof VectunError && (err.code === 'ERR_LAB_TIMEOUT' || /did not finish within/.test(err.message))) return 0;
    throw err;
  }
}

/**
 * Registers the interop tests for one topology: the initiator's first TCP
 * transfer completes the handshake (whitepaper §5.4.2-5.4.4), then TCP both
 * ways over IPv4 and IPv6 and UDP both ways (transport data, §5.4.6).
 */
export function interopTests(label: string, getTopology: () => WgTopology, initiator: 'a' | 'b'): void {
  const sides = (): { first: WgSide; second: WgSide } => {
    const t = getTopology();
    return initiator === 'a' ? { first: t.a, second: t.b } : { first: t.b, second: t.a };
  };

  test(`${label}: no handshake before traffic; the initiator's first packets complete one (§5.4.2, §5.4.3)`, async () => {
    const { first, second } = sides();
    assert.equal((await onlyPeer(first)).latestHandshake, 0);
    assert.equal((await onlyPeer(second)).latestHandshake, 0);
    await assertTcpThrough(first, second, 4, 1 << 20);
    const p1 = await onlyPeer(first);
    const p2 = await onlyPeer(second);
    assert.ok(p1.latestHandshake > 0, 'initiator has a handshake');
    assert.ok(p2.latestHandshake > 0, 'responder has a handshake');
    assert.ok(p1.txBytes > 1 << 20 && p2.rxBytes > 1 << 20, 'transfer counted both ends');
    assert.equal(p2.endpoint, wgEndpointOf(first, getTopology().family), 'the responder learned the initiator\'s endpoint (§2 roaming)');
  });

  for (const family of [4, 6] as const) {
    test(`${label}: TCP over IPv${family} in the tunnel, both directions, sha256 verified (§5.4.6)`, async () => {
      const { first, second } = sides();
      await assertTcpThrough(first, second, family, WG_TCP_BYTES, 11 + family);
      await assertTcpThrough(second, first, family, WG_TCP_BYTES, 21 + family);
    });

    test(`${label}: UDP over IPv${family} in the tunnel, both directions, every datagram verified`, async () => {
      const { first, second } = sides();
      await assertUdpThrough(first, second, family);
      await assertUdpThrough(second, first, family);
    });
  }
}
