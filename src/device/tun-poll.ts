/**
 * Readiness of a {@link Tun}'s descriptor: which directions the `uv_poll`
 * watcher follows, from who is waiting (readers, a blocked writer).
 * @module
 */
import { POLL_READABLE, POLL_WRITABLE } from './native.js';
import { kState, type TunHost } from './tun-state.js';

/** Watches readable while someone reads, writable while a write waits (EAGAIN). */
export function updatePoll(tun: TunHost, idle = false): void {
  const s = tun[kState];
  if (s.closed) return;
  let wantRead = s.readers.length > 0 && s.removed === undefined;
  if (!wantRead && !idle && (s.pollMask & POLL_READABLE) !== 0 && s.removed === undefined) {
    // Keep watching until the check phase: a loop like the bridge reads again
    // in the same tick, and stopping then restarting the watcher costs two
    // epoll_ctl calls (uv_poll_stop removes the fd at once) per batch.
    wantRead = true;
    if (!s.idleCheck) {
      s.idleCheck = true;
      setImmediate(() => {
        s.idleCheck = false;
        updatePoll(tun, true);
      });
    }
  }
  const mask = (wantRead ? POLL_READABLE : 0) | (s.writable !== undefined ? POLL_WRITABLE : 0);
  if (mask === s.pollMask) return;
  s.pollMask = mask;
  s.binding.pollSet(s.poller, mask);
}
