/**
 * Views on fixed slots of an output area, reused across batches while a
 * slot's offset and length repeat: in a bulk flow every batch lays its
 * packets out the same way, so the data path hands out the same view
 * objects instead of allocating one per packet.
 * @module
 */

/** A cache of one view per slot of one buffer. */
export class SlotViews {
  #buffer: ArrayBufferLike;
  #views: Uint8Array[] = [];
  #offset = new Int32Array(1024);
  #length = new Int32Array(1024);

  /** @param buffer the area the views are on */
  constructor(buffer: ArrayBufferLike) {
    this.#buffer = buffer;
  }

  /** Switches to a new area (the old views are dropped). */
  rebase(buffer: ArrayBufferLike): void {
    this.#buffer = buffer;
    this.#views = [];
  }

  /** The view for `slot` at `[offset, offset + length)`, reused if it is the one from last time. */
  get(slot: number, offset: number, length: number): Uint8Array {
    const v = this.#views[slot];
    if (v !== undefined && this.#offset[slot] === offset && this.#length[slot] === length) return v;
    if (slot >= this.#offset.length) this.#grow(slot + 1);
    const fresh = new Uint8Array(this.#buffer, offset, length);
    this.#views[slot] = fresh;
    this.#offset[slot] = offset;
    this.#length[slot] = length;
    return fresh;
  }

  #grow(slots: number): void {
    const n = Math.max(slots, 2 * this.#offset.length);
    const off = new Int32Array(n);
    off.set(this.#offset);
    const len = new Int32Array(n);
    len.set(this.#length);
    this.#offset = off;
    this.#length = len;
  }
}
