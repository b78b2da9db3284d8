/**
 * Packet memory the SIMD checksum can read in place.
 *
 * WebAssembly code can only address its own linear memory, so a packet held in
 * an ordinary `Uint8Array` must be copied before the fast checksum can run on
 * it. An Arena is a fixed-size `WebAssembly.Memory`: the device layer reads
 * frames into it and the core splits them into it, so the checksums of the
 * read and write paths run where the bytes already are, with no copy.
 *
 * The memory never grows: growing would detach every view handed out before.
 * @module
 */
import { CHECKSUM_WASM } from './checksum-wasm.generated.js';

const WASM_PAGE = 65536;

/**
 * CK-1 over arena bytes `[offset, offset + length)` plus `initial`: the folded,
 * non-inverted 16-bit sum. `offset` is a byte offset into the arena (for a view
 * `v` on the arena: `v.byteOffset + i`).
 */
export type WasmSum = (offset: number, length: number, initial: number) => number;

/**
 * Copies arena bytes `[src, src + length)` to `dst` and returns their CK-1 sum
 * plus `initial` (one pass over the bytes). The ranges must not overlap unless
 * `dst <= src`.
 */
export type WasmCopySum = (dst: number, src: number, length: number, initial: number) => number;

/**
 * @internal The GSO split's remaining segments in one call (checksum.wat
 * `split`); parameters as documented there. Returns bytes written from `out`.
 */
export type WasmSplit = (
  out: number, src: number, hdrLen: number, csumStart: number, gsoSize: number, len: number,
  kind: number, origId: number, firstSeq: number, ipBase: number, thBase: number,
  midFlags: number, lastFlags: number, csumOffset: number, first: number,
) => number;

let compiled: WebAssembly.Module | undefined;
const arenaByBuffer = new WeakMap<ArrayBufferLike, Arena>();

/** A fixed block of WebAssembly memory with its own checksum instance. */
export class Arena {
  /** The whole arena as bytes. Views on it (`subarray`) stay valid for its lifetime. */
  readonly bytes: Uint8Array;
  /**
   * The SIMD sum over this arena (CK-1) by absolute byte offset: the cheapest
   * call for code that already knows where its packets sit (no view lookup).
   */
  readonly sum: WasmSum;
  /** Fused copy + sum within this arena (used by the GSO split). */
  readonly copySum: WasmCopySum;
  /** @internal The GSO split loop within this arena (src/core/gso.ts). */
  readonly split: WasmSplit;

  /** @param byteLength size in bytes, rounded up to whole 64 KiB pages. */
  constructor(byteLength: number) {
    const pages = Math.max(1, Math.ceil(byteLength / WASM_PAGE));
    const memory = new WebAssembly.Memory({ initial: pages, maximum: pages });
    compiled ??= new WebAssembly.Module(CHECKSUM_WASM);
    const instance = new WebAssembly.Instance(compiled, { env: { memory } });
    this.sum = instance.exports['sum'] as WasmSum;
    this.copySum = instance.exports['copysum'] as WasmCopySum;
    this.split = instance.exports['split'] as WasmSplit;
    this.bytes = new Uint8Array(memory.buffer);
    arenaByBuffer.set(memory.buffer, this);
  }

  /** The arena that owns `view`'s memory, if any. */
  static of(view: Uint8Array): Arena | undefined {
    return arenaByBuffer.get(view.buffer);
  }
}

/** @internal The arena whose memory is `buffer`, if any. */
export function arenaOf(buffer: ArrayBufferLike): Arena | undefined {
  return arenaByBuffer.get(buffer);
}
