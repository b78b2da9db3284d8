/**
 * Readiness of a {@link UdpSocket}'s descriptor: which directions the
 * `uv_poll` watcher follows, from who is waiting (readers, a blocked send).
 * @module
 */
import { POLL_READABLE, POLL_WRITABLE } from '../device/native.js';
import { serveReaders, type UdpBatch } from './socket-read.js';
import { kState, type UdpHost } from './socket-state.js';

const EMPTY_BATCH: UdpBatch = { datagrams: [], sources: [] };

/** Watches readable while someone reads, writable while a send waits (EAGAIN). */
export function updatePoll(sock: UdpHost, idle = false): void {
  const s = sock[kState];
  if (s.closed) return;
  let wantRead = s.readers.length > 0;
  if (!wantRead && !idle && (s.pollMask & POLL_READABLE) !== 0) {
    // As in Tun: keep watching until the check phase, so a reader that comes
    // back in the same tick costs no epoll_ctl DEL/ADD pair.
    wantRead = true;
    if (!s.idleCheck) {
      s.idleCheck = true;
      setImmediate(() => {
        s.idleCheck = false;
        updatePoll(sock, true);
      });
    }
  }
  const mask = (wantRead ? POLL_READABLE : 0) | (s.writable !== undefined ? POLL_WRITABLE : 0);
  if (mask === s.pollMask) return;
  s.pollMask = mask;
  s.binding.pollSet(s.poller, mask);
}

/** The watcher's callback: wakes a waiting send, serves readers. */
export function onPoll(sock: UdpHost, status: number, events: number): void {
  const s = sock[kState];
  if (s.closed) return;
  if (status < 0) s.pollMask = 0;
  if ((status < 0 || (events & POLL_WRITABLE) !== 0) && s.writable !== undefined) {
    const w = s.writable;
    s.writable = undefined;
    w.resolve(EMPTY_BATCH);
  }
  if (status < 0 || (events & POLL_READABLE) !== 0) serveReaders(sock);
  updatePoll(sock);
}
