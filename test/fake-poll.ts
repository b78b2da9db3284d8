/**
 * The poll half of the fake native bindings (test/device/fake-binding.ts,
 * test/udp/fake-udp-binding.ts): records every uv_poll handle the code under
 * test creates, its mask, ref and close, so a test can fire readiness.
 */
import type { PollHandle } from '../src/device/native.js';

/** One fake uv_poll handle. */
export interface FakePoller {
  fd: number;
  callback: (status: number, events: number) => void;
  /** Events being watched (1 readable, 2 writable). */
  mask: number;
  closed: boolean;
  ref: boolean;
}

export class FakePolls {
  /** Every handle created, in order. */
  readonly pollers: FakePoller[] = [];

  pollCreate(fd: number, callback: (status: number, events: number) => void): PollHandle {
    const p: FakePoller = { fd, callback, mask: 0, closed: false, ref: true };
    this.pollers.push(p);
    return p as unknown as PollHandle;
  }

  pollSet(handle: PollHandle, events: number): number {
    (handle as unknown as FakePoller).mask = events;
    return 0;
  }

  pollClose(handle: PollHandle): number {
    (handle as unknown as FakePoller).closed = true;
    return 0;
  }

  pollRef(handle: PollHandle, ref: boolean): number {
    (handle as unknown as FakePoller).ref = ref;
    return 0;
  }
}
