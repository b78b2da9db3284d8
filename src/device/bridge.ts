/**
 * Forwarding loop between two TUN devices: each direction reads a batch from
 * one device and writes it to the other, and reads again only once the write
 * has resolved (backpressure: a slow side slows the reader instead of queueing
 * without bound). Batch views are valid until the next read of their device
 * (see `Tun.read`), which is exactly as long as the write needs them.
 *
 * With offload on, a read yields the segments of the kernel's super-packets
 * (GSO split, RD-9) and the write coalesces them again (GRO, sec. 5) into
 * scatter-gather writes, so a 64 KiB TCP burst crosses the bridge as about one
 * read and one writev.
 * @module
 */
import { VectunError } from '../errors.js';

/**
 * What the bridge needs from a device; `Tun` satisfies it. Kept structural so
 * the loop can be tested with fakes and does not depend on the device's
 * internals.
 */
export interface BridgePort {
  /** Device name, for messages. */
  readonly name: string;
  /** One batch of plain IP packets, views valid until the next read. */
  read(): Promise<Uint8Array[]>;
  /**
   * Resolves once the kernel took the packets (or rejected some, D-6).
   * `checksumsVerified` comes from the source's flags (see below).
   */
  write(packets: Uint8Array[], options?: { checksumsVerified?: Uint8Array }): Promise<BridgeWriteResult>;
  /**
   * Optional (`Tun.checksumsVerified`): per packet of the last batch read, 1
   * when its checksum is known to verify. The bridge hands it to the other
   * side's write unchanged with the batch, so GRO skips re-validating
   * checksums the split has just computed (CK-4 would pass).
   */
  readonly checksumsVerified?: Uint8Array;
}

/** The part of `Tun.write`'s result the bridge counts. */
export interface BridgeWriteResult {
  /** Packets the kernel accepted. */
  packets: number;
  /** `writev` calls issued (coalesced write lists); absent means one per packet. */
  writes?: number;
}

/** Counters of one direction. */
export interface BridgeDirectionStats {
  /** Batches read (`read()` calls that returned). */
  reads: number;
  /** Packets read (segments after GSO split). */
  packets: number;
  /** Bytes of those packets (IP headers included, vnet headers not). */
  bytes: number;
  /** Packets the destination accepted. */
  written: number;
  /** writev calls the destination issued for them. */
  writes: number;
  /** Packets read but not accepted by the destination (write errors, D-6). */
  drops: number;
  /** Average packets per writev: how well writes coalesced. */
  readonly packetsPerWrite: number;
  /** Average packets (segments) per read batch. */
  readonly packetsPerRead: number;
}

/** Counters of both directions. */
export interface BridgeStats {
  /** From the first device to the second. */
  readonly aToB: BridgeDirectionStats;
  /** From the second device to the first. */
  readonly bToA: BridgeDirectionStats;
}

/** Options of {@link bridge}. */
export interface BridgeOptions {
  /** Stops the bridge when aborted (like calling `stop()`). */
  signal?: AbortSignal;
  /**
   * Called when a direction fails (a read or write rejects while the bridge
   * runs, e.g. `ERR_TUN_CLOSED`); the whole bridge then stops. Without it the
   * error is only kept in `handle.error`.
   */
  onError?: (error: Error, direction: 'aToB' | 'bToA') => void;
}

/** A running bridge. */
export interface BridgeHandle {
  /** Live counters. */
  readonly stats: BridgeStats;
  /** The first error that stopped the bridge, if any. */
  readonly error: Error | undefined;
  /**
   * Resolves when both loops have returned: after `stop()` or an error, once
   * each device's pending read has settled (closing the devices settles them).
   */
  readonly done: Promise<void>;
  /**
   * Stops forwarding and resolves once no write is in flight. A read already
   * waiting for packets cannot be withdrawn: it stays pending until a packet
   * arrives (which is then still forwarded) or the device closes. Idempotent.
   */
  stop(): Promise<void>;
}

/** @internal The counters of one direction as plain numbers (what a bridge worker posts). */
export type DirectionCounters = Omit<BridgeDirectionStats, 'packetsPerWrite' | 'packetsPerRead'>;

/** @internal A snapshot of `s`'s counters. */
export function directionCounters(s: DirectionCounters): DirectionCounters {
  return { reads: s.reads, packets: s.packets, bytes: s.bytes, written: s.written, writes: s.writes, drops: s.drops };
}

/** @internal One direction's counters, live in a bridge or summed over queue pairs (`add`). */
export class DirectionStats implements BridgeDirectionStats {
  reads = 0;
  packets = 0;
  bytes = 0;
  written = 0;
  writes = 0;
  drops = 0;
  constructor(c?: DirectionCounters) {
    if (c !== undefined) this.add(c);
  }
  add(c: DirectionCounters): void {
    this.reads += c.reads;
    this.packets += c.packets;
    this.bytes += c.bytes;
    this.written += c.written;
    this.writes += c.writes;
    this.drops += c.drops;
  }
  get packetsPerWrite(): number {
    return this.writes === 0 ? 0 : this.written / this.writes;
  }
  get packetsPerRead(): number {
    return this.reads === 0 ? 0 : this.packets / this.reads;
  }
  toJSON(): object {
    return { ...this, packetsPerWrite: this.packetsPerWrite, packetsPerRead: this.packetsPerRead };
  }
}

/**
 * Forwards packets both ways between `a` and `b` until stopped.
 * @throws VectunError `ERR_INVALID_ARG` when `a` and `b` are the same device.
 */
export function bridge(a: BridgePort, b: BridgePort, options: BridgeOptions = {}): BridgeHandle {
  if (a === b) throw new VectunError('ERR_INVALID_ARG', 'bridge needs two different devices');
  const stats = { aToB: new DirectionStats(), bToA: new DirectionStats() };
  let stopped = false;
  let error: Error | undefined;
  // Resolvers of stop() calls waiting for the in-flight writes to finish.
  const writing = { aToB: false, bToA: false };
  let idleWaiters: Array<() => void> = [];
  const notifyIdle = (): void => {
    if (writing.aToB || writing.bToA) return;
    const waiters = idleWaiters;
    idleWaiters = [];
    for (const w of waiters) w();
  };

  const forward = async (src: BridgePort, dst: BridgePort, direction: 'aToB' | 'bToA'): Promise<void> => {
    const s = stats[direction];
    while (!stopped) {
      let batch: Uint8Array[];
      try {
        batch = await src.read();
      } catch (err) {
        return fail(err, direction);
      }
      // A read that was pending at stop() still forwards its batch: dropping it would lose packets.
      s.reads++;
      const n = batch.length;
      if (n === 0) continue;
      s.packets += n;
      for (let i = 0; i < n; i++) s.bytes += batch[i]!.length;
      // Read before anything else can read src again: same lifetime as the batch.
      const verified = src.checksumsVerified;
      writing[direction] = true;
      try {
        const result = await dst.write(batch, verified === undefined || verified.length === 0 ? undefined : { checksumsVerified: verified });
        s.written += result.packets;
        s.writes += result.writes ?? result.packets;
        s.drops += n - result.packets;
      } catch (err) {
        s.drops += n;
        return fail(err, direction);
      } finally {
        writing[direction] = false;
        notifyIdle();
      }
    }
  };

  const fail = (err: unknown, direction: 'aToB' | 'bToA'): void => {
    if (stopped) return; // a device closed after stop(): expected, not an error
    const e = err instanceof Error ? err : new Error(String(err));
    error ??= e;
    stopped = true;
    options.onError?.(e, direction);
  };

  const stop = (): Promise<void> => {
    stopped = true;
    if (!writing.aToB && !writing.bToA) return Promise.resolve();
    return new Promise((resolve) => idleWaiters.push(resolve));
  };

  const onAbort = (): void => void stop();
  options.signal?.addEventListener('abort', onAbort, { once: true });
  if (options.signal?.aborted) stopped = true;

  const done = Promise.all([forward(a, b, 'aToB'), forward(b, a, 'bToA')]).then(() => {
    options.signal?.removeEventListener('abort', onAbort);
  });

  return {
    stats,
    get error() {
      return error;
    },
    done,
    stop,
  };
}
