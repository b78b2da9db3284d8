/**
 * The counters of a {@link Tun}: their shape, a fresh set, and snapshots.
 * @module
 */
import type { VectunError } from '../errors.js';

/** Counters of one device (snapshot). */
export interface TunStats {
  /** Batches returned by read. */
  reads: number;
  /** Frames the kernel handed over. */
  frames: number;
  /** Frames announcing a GSO type (split by the core). */
  superPackets: number;
  /** Packets produced from super-packets. */
  segments: number;
  /** Packets delivered to the caller. */
  packetsRead: number;
  /** Bytes of those packets (IP headers included, vnet headers not). */
  bytesRead: number;
  /** Frames (or packets) dropped on read, by error code (`ERR_PACKET_EMPTY`, `ERR_GSO_TYPE_UNSUPPORTED`, ...). */
  readDrops: Record<string, number>;
  /** Successful writev calls. */
  writes: number;
  /** Of those, carrying more than one packet. */
  coalescedWrites: number;
  /** Packets the kernel accepted (each packet of a coalesced write counts). */
  packetsWritten: number;
  /** Bytes accepted, vnet headers included. */
  bytesWritten: number;
  /** Packets the kernel refused (or that were dropped before it, e.g. empty), by code or errno name. */
  writeDrops: Record<string, number>;
  /** Times a write waited for the device to become writable (EAGAIN). */
  writeWaits: number;
  /** Coalesced writes rejected with EINVAL that turned GRO off (style rule 3). */
  groFallbacks: {
    /** TCP GRO turned off after a rejected coalesced TCP write. */
    tcp: number;
    /** UDP GRO turned off after a rejected coalesced UDP write. */
    udp: number;
  };
}

export function emptyStats(): TunStats {
  return {
    reads: 0, frames: 0, superPackets: 0, segments: 0, packetsRead: 0, bytesRead: 0, readDrops: {},
    writes: 0, coalescedWrites: 0, packetsWritten: 0, bytesWritten: 0, writeDrops: {}, writeWaits: 0,
    groFallbacks: { tcp: 0, udp: 0 },
  };
}

/** A copy the caller may keep (the live counters go on changing). */
export function snapshotStats(s: TunStats): TunStats {
  return { ...s, readDrops: { ...s.readDrops }, writeDrops: { ...s.writeDrops }, groFallbacks: { ...s.groFallbacks } };
}

export function bump(counts: Record<string, number>, key: string, by = 1): void {
  counts[key] = (counts[key] ?? 0) + by;
}

/** The drop-counter key of a syscall error: its errno name (`EIO`), as syscallError wrote it. */
export function errnoKey(err: VectunError): string {
  return /failed: (\S+)/.exec(err.message)?.[1] ?? `errno ${err.errno}`;
}
