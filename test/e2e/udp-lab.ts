/**
 * Shared pieces of the UDP e2e tests: two namespaces joined by a veth pair
 * (198.18.6x.0/24 and 2001:2:0:6x::/64, static neighbours so no datagram
 * waits on ARP/ND), and a bounded, windowed, fully verified transfer between
 * two UdpSockets of this process (each created in its namespace with
 * `netns`).
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createNetns, createVethPair, type Netns } from '../../src/lab/netns.js';
import { UdpSocket, type UdpEndpoint } from '../../src/udp/index.js';

/** Two namespaces and the addresses of their veth ends. */
export interface UdpLab {
  a: Netns;
  b: Netns;
  /** [a, b] */
  v4: [string, string];
  v6: [string, string];
  remove(): Promise<void>;
}

/** Creates namespaces `a` and `b` joined by veth `vtu<n>a`/`vtu<n>b` at `mtu`. */
export async function createUdpLab(n: number, mtu = 1500): Promise<UdpLab> {
  const a = await createNetns(`udp${n}a`);
  let b: Netns | undefined;
  try {
    b = await createNetns(`udp${n}b`);
    const net = 60 + n;
    const v4: [string, string] = [`198.18.${net}.1`, `198.18.${net}.2`];
    const v6: [string, string] = [`2001:2:0:${net}::1`, `2001:2:0:${net}::2`];
    const mac = (side: number): string => `02:00:00:00:${net.toString(16).padStart(2, '0')}:0${side}`;
    await createVethPair(a, `vtu${n}a`, b, `vtu${n}b`);
    for (const [ns, dev, side] of [[a, `vtu${n}a`, 0], [b, `vtu${n}b`, 1]] as const) {
      await ns.ip(['link', 'set', 'dev', dev, 'address', mac(side + 1)]);
      await ns.setMtu(dev, mtu);
      await ns.addAddress(dev, `${v4[side]}/24`);
      await ns.addAddress(dev, `${v6[side]}/64`);
      await ns.setUp(dev);
      const other = 1 - side;
      await ns.ip(['neigh', 'replace', v4[other]!, 'lladdr', mac(other + 1), 'dev', dev, 'nud', 'permanent']);
      await ns.ip(['-6', 'neigh', 'replace', v6[other]!, 'lladdr', mac(other + 1), 'dev', dev, 'nud', 'permanent']);
    }
    const bb = b;
    return { a, b: bb, v4, v6, remove: async () => {
      await a.remove();
      await bb.remove();
    } };
  } catch (err) {
    await a.remove();
    await b?.remove();
    throw err;
  }
}

/**
 * Packets the kernel dropped before any socket, on a full per-CPU backlog
 * (/proc/net/softnet_stat, second column, summed over CPUs; system-wide).
 * veth delivers through that backlog, so a drop there is not the socket's.
 */
export function backlogDrops(): number {
  return readFileSync('/proc/net/softnet_stat', 'utf8').trim().split('\n').reduce((n, line) => n + parseInt(line.split(/\s+/)[1] ?? '0', 16), 0);
}

/** Deterministic sizes: runs (1..80 long) of one size in [min, max], some runs ending shorter. */
export function mixedSizes(count: number, min: number, max: number, seed: number): number[] {
  let x = seed | 1;
  const next = (): number => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) / 4294967296;
  };
  const sizes: number[] = [];
  while (sizes.length < count) {
    const size = min + Math.floor(next() * (max - min + 1));
    const run = 1 + Math.floor(next() * 80);
    for (let i = 0; i < run && sizes.length < count; i++) sizes.push(size);
    if (next() < 0.3 && sizes.length < count && size > min) sizes.push(min + Math.floor(next() * (size - min)));
  }
  return sizes;
}

/** Byte j of datagram `seq` of flow `flow`. */
function patternByte(flow: number, seq: number, j: number): number {
  return (seq * 7 + j * 13 + flow * 101 + (j >>> 8)) & 0xff;
}

/** Fills datagram `seq`: its first 4 bytes (when it has them) are seq, the rest the pattern. */
export function fill(out: Uint8Array, flow: number, seq: number): void {
  for (let j = 0; j < out.length; j++) out[j] = patternByte(flow, seq, j);
  if (out.length >= 4) new DataView(out.buffer, out.byteOffset, 4).setUint32(0, seq);
}

/** Whether `d` is exactly datagram `seq` of `flow` with `size` bytes; a description of the difference otherwise. */
export function check(d: Uint8Array, flow: number, seq: number, size: number): string | undefined {
  // The sequence number first, so a loss reads as a loss, not as a wrong size.
  if (d.length >= 4 && size >= 4) {
    const got = new DataView(d.buffer, d.byteOffset, 4).getUint32(0);
    if (got !== seq) return `flow ${flow}: datagram ${got} where ${seq} was expected (order or loss)`;
  }
  if (d.length !== size) return `datagram ${seq} of flow ${flow}: ${d.length} bytes, expected ${size}`;
  for (let j = 4; j < d.length; j++) {
    if (d[j] !== patternByte(flow, seq, j)) return `datagram ${seq} of flow ${flow}: byte ${j} differs`;
  }
  if (d.length < 4) for (let j = 0; j < d.length; j++) if (d[j] !== patternByte(flow, seq, j)) return `datagram ${seq} of flow ${flow}: byte ${j} differs`;
  return undefined;
}

/** Counts of one direction. */
export interface FlowResult {
  sent: number;
  received: number;
  bytes: number;
  /** The interned source every datagram came from. */
  source: UdpEndpoint | undefined;
}

/**
 * Sends `sizes.length` datagrams from `tx` to `dest` (where `rx` listens) in
 * windows of `window`, and verifies on `rx` that each arrives once, in order,
 * from `txAddress`, with its exact contents. Rejects on any difference or
 * after `timeoutMs`.
 */
export async function verifiedTransfer(
  tx: UdpSocket, rx: UdpSocket, dest: UdpEndpoint, sizes: readonly number[], flow: number, timeoutMs: number, window = 2048,
): Promise<FlowResult> {
  const total = sizes.length;
  let received = 0;
  let bytes = 0;
  let failure: Error | undefined;
  let wake: (() => void) | undefined;
  let source: UdpEndpoint | undefined;
  const deadline = Date.now() + timeoutMs;
  const receiving = (async () => {
    while (received < total && failure === undefined) {
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`flow ${flow}: ${received} of ${total} datagrams within ${timeoutMs} ms`);
      let timer: NodeJS.Timeout | undefined;
      const batch = await Promise.race([
        rx.read(),
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new Error(`flow ${flow}: ${received} of ${total} datagrams within ${timeoutMs} ms`)), left);
        }),
      ]).finally(() => clearTimeout(timer));
      for (let i = 0; i < batch.datagrams.length; i++) {
        const src = batch.sources[i]!;
        source ??= src;
        assert.equal(src, source, 'one sender, one interned source object');
        const why = check(batch.datagrams[i]!, flow, received, sizes[received]!);
        if (why !== undefined) throw new Error(why);
        bytes += batch.datagrams[i]!.length;
        received++;
      }
      wake?.();
    }
  })().catch((err: unknown) => {
    failure = err instanceof Error ? err : new Error(String(err));
    wake?.();
  });
  let sent = 0;
  while (sent < total && failure === undefined) {
    // Keep at most two windows in flight: a full receive buffer would drop, and a drop fails the check.
    while (sent - received > window && failure === undefined) {
      if (Date.now() > deadline) throw new Error(`flow ${flow}: receiver stalled at ${received} of ${sent} sent`);
      await new Promise<void>((resolve) => {
        wake = resolve;
        setTimeout(resolve, 50).unref();
      });
      wake = undefined;
    }
    const n = Math.min(window, total - sent);
    let len = 0;
    for (let i = 0; i < n; i++) len += sizes[sent + i]!;
    const block = new Uint8Array(len);
    const datagrams: Uint8Array[] = [];
    let at = 0;
    for (let i = 0; i < n; i++) {
      const d = block.subarray(at, at + sizes[sent + i]!);
      fill(d, flow, sent + i);
      datagrams.push(d);
      at += d.length;
    }
    const r = await tx.send(datagrams, dest);
    assert.deepEqual(r.failures, [], `flow ${flow}: send failures`);
    assert.equal(r.datagrams, n);
    sent += n;
  }
  await receiving;
  if (failure !== undefined) throw failure;
  return { sent, received, bytes, source };
}

/** Opens a socket in `ns` bound to `address` with the given offload switches and an 8 MiB receive buffer. */
export function openIn(ns: Netns, address: string, offload: boolean): Promise<UdpSocket> {
  return UdpSocket.open({ netns: ns.name, address, gso: offload, gro: offload, receiveBufferSize: 8 << 20, sendBufferSize: 4 << 20 });
}
