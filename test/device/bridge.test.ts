/**
 * The forwarding loop against fake devices: ordering, counters, backpressure
 * (a read waits for the previous write), stop and error behaviour.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { bridge, type BridgePort, type BridgeWriteResult } from '../../src/device/bridge.js';
import { VectunError } from '../../src/errors.js';
import type { Tun } from '../../src/device/tun.js';

// Type test: a Tun is a BridgePort (fails to compile if the two APIs drift apart).
export const tunIsABridgePort: (tun: Tun) => BridgePort = (tun) => tun;

/** A fake device: batches are fed by the test; writes complete when the test says so. */
class FakePort implements BridgePort {
  readonly written: Uint8Array[][] = [];
  readonly events: string[] = [];
  reads = 0;
  /** When set, writes wait for `releaseWrite()`. */
  holdWrites = false;
  /** Packets per writev the fake reports (a coalescing device > 1). */
  coalesce = 1;
  /** When set, the next write rejects with it. */
  failWrite: Error | undefined;
  /** Packets the next write rejects (D-6 partial acceptance). */
  rejectNext = 0;
  #queue: Uint8Array[][] = [];
  #waiting: ((b: Uint8Array[]) => void) | undefined;
  #closed: ((e: Error) => void) | undefined;
  #release: (() => void) | undefined;

  constructor(readonly name: string) {}

  feed(batch: Uint8Array[]): void {
    if (this.#waiting) {
      const w = this.#waiting;
      this.#waiting = undefined;
      w(batch);
    } else this.#queue.push(batch);
  }

  read(): Promise<Uint8Array[]> {
    this.reads++;
    this.events.push(`read${this.reads}`);
    const next = this.#queue.shift();
    if (next) return Promise.resolve(next);
    return new Promise((resolve, reject) => {
      this.#waiting = resolve;
      this.#closed = reject;
    });
  }

  async write(packets: Uint8Array[]): Promise<BridgeWriteResult> {
    this.events.push(`write${this.written.length + 1}`);
    if (this.failWrite) throw this.failWrite;
    if (this.holdWrites) await new Promise<void>((r) => (this.#release = r));
    // Copy: the views are only valid until the source's next read.
    this.written.push(packets.map((p) => p.slice()));
    const accepted = packets.length - this.rejectNext;
    this.rejectNext = 0;
    this.events.push(`wrote${this.written.length}`);
    return { packets: accepted, writes: Math.ceil(accepted / this.coalesce) };
  }

  releaseWrite(): void {
    const r = this.#release;
    this.#release = undefined;
    r?.();
  }

  close(): void {
    this.#closed?.(new VectunError('ERR_TUN_CLOSED', 'closed'));
    this.#waiting = undefined;
  }
}

const pkt = (n: number, len = 100): Uint8Array => new Uint8Array(len).fill(n);
const tick = (): Promise<void> => new Promise((r) => setImmediate(r));

test('bridge: forwards batches both ways in order and counts packets, bytes and writes', async () => {
  const a = new FakePort('a');
  const b = new FakePort('b');
  b.coalesce = 3;
  const h = bridge(a, b);
  a.feed([pkt(1), pkt(2), pkt(3)]);
  a.feed([pkt(4, 60)]);
  b.feed([pkt(9, 40), pkt(8, 40)]);
  await tick();
  await tick();
  assert.deepEqual(b.written, [[pkt(1), pkt(2), pkt(3)], [pkt(4, 60)]]);
  assert.deepEqual(a.written, [[pkt(9, 40), pkt(8, 40)]]);
  assert.equal(h.stats.aToB.packets, 4);
  assert.equal(h.stats.aToB.bytes, 360);
  assert.equal(h.stats.aToB.reads, 2);
  assert.equal(h.stats.aToB.written, 4);
  assert.equal(h.stats.aToB.writes, 2); // ceil(3/3) + ceil(1/3)
  assert.equal(h.stats.aToB.packetsPerWrite, 2);
  assert.equal(h.stats.aToB.packetsPerRead, 2);
  assert.equal(h.stats.bToA.packets, 2);
  assert.equal(h.stats.bToA.bytes, 80);
  assert.equal(h.stats.aToB.drops + h.stats.bToA.drops, 0);
  await h.stop();
  a.close();
  b.close();
  await h.done;
  assert.equal(h.error, undefined);
});

test('bridge: backpressure, the next read waits until the write resolved', async () => {
  const a = new FakePort('a');
  const b = new FakePort('b');
  b.holdWrites = true;
  const h = bridge(a, b);
  a.feed([pkt(1)]);
  a.feed([pkt(2)]);
  await tick();
  await tick();
  // One read returned, its write is held: no second read may have started.
  assert.equal(a.reads, 1);
  assert.deepEqual(b.events, ['read1', 'write1']);
  b.releaseWrite();
  await tick();
  await tick();
  assert.equal(a.reads, 2);
  b.releaseWrite();
  await tick();
  await tick();
  assert.deepEqual(b.written, [[pkt(1)], [pkt(2)]]);
  await h.stop();
  a.close();
  b.close();
  await h.done;
});

test('bridge: stop() waits for the write in flight, and a read pending at stop is still forwarded', async () => {
  const a = new FakePort('a');
  const b = new FakePort('b');
  b.holdWrites = true;
  const h = bridge(a, b);
  a.feed([pkt(1)]);
  await tick();
  let stopped = false;
  const stopping = h.stop().then(() => (stopped = true));
  await tick();
  assert.equal(stopped, false, 'stop resolved while a write was in flight');
  b.releaseWrite();
  await stopping;
  assert.deepEqual(b.written, [[pkt(1)]]);
  // b's read was pending at stop(): a late batch is forwarded, not lost.
  b.feed([pkt(7)]);
  await tick();
  await tick();
  assert.deepEqual(a.written, [[pkt(7)]]);
  a.close();
  await h.done;
  assert.equal(h.error, undefined, 'a close after stop is not an error');
  assert.equal(a.reads, 1, 'no read started after stop()');
  assert.equal(b.reads, 1, 'no read after the one pending at stop()');
});

test('bridge: a failing write stops both directions, counts drops and reports once (D-6)', async () => {
  const a = new FakePort('a');
  const b = new FakePort('b');
  const errors: string[] = [];
  const h = bridge(a, b, { onError: (e, dir) => errors.push(`${dir}:${(e as VectunError).code}`) });
  b.rejectNext = 1;
  a.feed([pkt(1), pkt(2)]);
  await tick();
  await tick();
  assert.equal(h.stats.aToB.drops, 1);
  assert.equal(h.stats.aToB.written, 1);
  b.failWrite = new VectunError('ERR_TUN_CLOSED', 'closed');
  a.feed([pkt(3), pkt(4), pkt(5)]);
  await tick();
  await tick();
  assert.equal(h.stats.aToB.drops, 4);
  assert.deepEqual(errors, ['aToB:ERR_TUN_CLOSED']);
  assert.equal((h.error as VectunError).code, 'ERR_TUN_CLOSED');
  b.close();
  await h.done;
  assert.deepEqual(errors, ['aToB:ERR_TUN_CLOSED'], 'the close after the failure is not reported again');
});

test('bridge: an aborted signal stops it; the same device twice is ERR_INVALID_ARG', async () => {
  const a = new FakePort('a');
  const b = new FakePort('b');
  const ac = new AbortController();
  const h = bridge(a, b, { signal: ac.signal });
  a.feed([pkt(1)]);
  await tick();
  ac.abort();
  a.feed([pkt(2)]); // answers the read that was pending at abort
  await tick();
  await tick();
  a.close();
  b.close();
  await h.done;
  assert.deepEqual(b.written, [[pkt(1)], [pkt(2)]]);
  assert.equal(a.reads, 2);
  assert.throws(() => bridge(a, a), (e: unknown) => e instanceof VectunError && e.code === 'ERR_INVALID_ARG');
});

test('bridge: hands the source\'s checksumsVerified flags of each batch to the destination\'s write (CK-4 opt-in)', async () => {
  const seen: (Uint8Array | undefined)[] = [];
  let reads = 0;
  let release: (() => void) | undefined;
  const a: BridgePort = {
    name: 'a',
    checksumsVerified: new Uint8Array(0),
    read() {
      reads++;
      if (reads > 2) return new Promise((_, reject) => (release = () => reject(new VectunError('ERR_TUN_CLOSED', 'closed'))));
      (this as { checksumsVerified: Uint8Array }).checksumsVerified = reads === 1 ? Uint8Array.of(1, 0) : Uint8Array.of(0);
      return Promise.resolve(reads === 1 ? [pkt(1), pkt(2)] : [pkt(3)]);
    },
    write: () => Promise.resolve({ packets: 0 }),
  };
  const b: BridgePort = {
    name: 'b',
    read: () => new Promise(() => undefined),
    write(packets, options) {
      seen.push(options?.checksumsVerified?.slice());
      return Promise.resolve({ packets: packets.length });
    },
  };
  const h = bridge(a, b);
  await tick();
  await tick();
  assert.deepEqual(seen, [Uint8Array.of(1, 0), Uint8Array.of(0)]);
  await h.stop();
  release?.();
});
