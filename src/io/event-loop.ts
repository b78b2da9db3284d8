/**
 * Event-loop plumbing shared by {@link Tun} and {@link UdpSocket}: pending
 * readers served one batch per turn, event mode (`'packets'` /
 * `'datagrams'` with pause/resume), the `uv_poll` mask, the wait for
 * writability, AbortSignal, and close (pending I/O rejected, `'close'` on the
 * next tick).
 *
 * Its own folder rather than src/device or src/udp: both use it and neither
 * owns it. It touches the native poll handle (the addon's poller, which the
 * UDP binding shares) and knows no packet format; what a handle reads, and
 * how it is named in events and errors, comes in through an {@link IoKind}.
 * @module
 */
import type { EventEmitter } from 'node:events';
import { VectunError, type VectunErrorCode } from '../errors.js';
import { EAGAIN, POLL_READABLE, POLL_WRITABLE, type NativeBinding, type PollHandle } from '../device/native.js';

/** A pending read (`T` a batch), or a writer waiting for writability (`T` void). */
export interface Pending<T> {
  resolve(value: T): void;
  reject(err: VectunError): void;
}

/** The part of a Tun's or UdpSocket's state this module drives; their states extend it. */
export interface IoState<T> {
  binding: Pick<NativeBinding, 'pollSet' | 'pollClose' | 'pollRef'>;
  poller: PollHandle;
  pollMask: number;
  /** A check-phase re-evaluation of a readable watch nobody waits on is scheduled. */
  idleCheck: boolean;
  closed: boolean;
  closing: Promise<void> | undefined;
  /** The descriptor is gone for good (a deleted TUN device): reads reject with this, readable is no longer watched. */
  removed?: VectunError | undefined;
  readers: Pending<T>[];
  serving: boolean;
  flowing: boolean;
  /** pause() was called: adding a batch listener does not resume. */
  paused: boolean;
  flowReader: Pending<T> | undefined;
  writable: Pending<void> | undefined;
  signal: AbortSignal | undefined;
  onAbort: (() => void) | undefined;
}

/** What differs between a Tun and a UdpSocket here; one constant per class. */
export interface IoKind<H extends EventEmitter, T> {
  state(host: H): IoState<T>;
  /** The event carrying a batch in event mode. */
  readonly event: string;
  /** The code of `closedError` (ends an async iteration). */
  readonly closedCode: string;
  closedError(what: string): VectunError;
  /** Whether `err` ends event mode without an `'error'` event (closing, the device removed). */
  quiet(err: VectunError): boolean;
  /** One batch from the descriptor: EAGAIN once drained, undefined when what was read gave nothing to deliver (read on). */
  receive(host: H): T | VectunError | typeof EAGAIN | undefined;
}

/** The error of a call on a closed handle: `code`, "`what`: `handle` is closed". */
export function closedErrorOf(code: VectunErrorCode, handle: string): (what: string) => VectunError {
  return (what) => new VectunError(code, `${what}: ${handle} is closed`);
}

function openState<H extends EventEmitter, T>(host: H, kind: IoKind<H, T>, what: string): IoState<T> {
  const s = kind.state(host);
  if (s.closed) throw kind.closedError(what);
  return s;
}

/** `read()`: the next batch, for one caller. */
export function read<H extends EventEmitter, T>(host: H, kind: IoKind<H, T>): Promise<T> {
  let s: IoState<T>;
  try {
    s = openState(host, kind, 'read');
  } catch (err) {
    return Promise.reject(err);
  }
  return new Promise<T>((resolve, reject) => {
    s.readers.push({ resolve, reject });
    serveReaders(host, kind);
  });
}

/** `[Symbol.asyncIterator]()`: batches as from `read()` until the handle closes. */
export async function* batches<H extends EventEmitter, T>(host: H, kind: IoKind<H, T>): AsyncGenerator<T, void, undefined> {
  for (;;) {
    let batch: T;
    try {
      batch = await read(host, kind);
    } catch (err) {
      if (err instanceof VectunError && err.code === kind.closedCode) return;
      throw err;
    }
    yield batch;
  }
}

/** Event mode starts when a batch listener is added, as streams do with 'data'. */
export function resumeOnListener<H extends EventEmitter, T>(host: H, kind: IoKind<H, T>): void {
  host.on('newListener', (event: string | symbol) => {
    if (event === kind.event) {
      queueMicrotask(() => {
        const s = kind.state(host);
        if (!s.closed && !s.flowing && !s.paused) resume(host, kind);
      });
    }
  });
}

/** `pause()`: leaves event mode; the flow's pending read is withdrawn. */
export function pause<H extends EventEmitter, T>(host: H, kind: IoKind<H, T>): void {
  const s = openState(host, kind, 'pause');
  s.flowing = false;
  s.paused = true;
  const r = s.flowReader;
  if (r !== undefined) {
    const at = s.readers.indexOf(r);
    if (at >= 0) s.readers.splice(at, 1);
    s.flowReader = undefined;
  }
  updatePoll(s);
}

/** `resume()`: (re)enters event mode. */
export function resume<H extends EventEmitter, T>(host: H, kind: IoKind<H, T>): void {
  const s = openState(host, kind, 'resume');
  s.paused = false;
  if (s.flowing) return;
  s.flowing = true;
  flow(host, kind);
}

function flow<H extends EventEmitter, T>(host: H, kind: IoKind<H, T>): void {
  const s = kind.state(host);
  if (!s.flowing || s.closed || s.flowReader !== undefined) return;
  const reader: Pending<T> = {
    resolve: (batch) => {
      s.flowReader = undefined;
      host.emit(kind.event, batch);
      // Next batch after the listeners ran and I/O had its turn.
      setImmediate(() => flow(host, kind));
    },
    reject: (err) => {
      s.flowReader = undefined;
      s.flowing = false;
      if (!kind.quiet(err)) host.emit('error', err);
    },
  };
  s.flowReader = reader;
  s.readers.push(reader);
  serveReaders(host, kind);
}

/** Hands batches to waiting readers, one per turn (each overwrites the last one's views). */
export function serveReaders<H extends EventEmitter, T>(host: H, kind: IoKind<H, T>): void {
  const s = kind.state(host);
  if (s.serving) return;
  s.serving = true;
  try {
    while (s.readers.length > 0 && !s.closed) {
      if (s.removed !== undefined) {
        for (const r of s.readers.splice(0)) r.reject(s.removed);
        break;
      }
      const batch = kind.receive(host);
      if (batch === EAGAIN) break;
      if (batch === undefined) continue;
      if (batch instanceof VectunError) {
        s.readers.shift()!.reject(batch);
        continue;
      }
      s.readers.shift()!.resolve(batch);
      if (s.readers.length > 0) setImmediate(() => serveReaders(host, kind));
      break;
    }
  } finally {
    s.serving = false;
  }
  updatePoll(s);
}

/** Watches readable while someone reads, writable while a write waits (EAGAIN). */
export function updatePoll(s: IoState<unknown>, idle = false): void {
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
        updatePoll(s, true);
      });
    }
  }
  const mask = (wantRead ? POLL_READABLE : 0) | (s.writable !== undefined ? POLL_WRITABLE : 0);
  if (mask === s.pollMask) return;
  s.pollMask = mask;
  s.binding.pollSet(s.poller, mask);
}

/** Resolves once the descriptor is writable (or the watcher failed); rejects on close. */
export function waitWritable(s: IoState<unknown>): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    s.writable = { resolve, reject };
    updatePoll(s);
  });
}

/** The watcher's callback: wakes a waiting writer, serves readers. */
export function onPoll<H extends EventEmitter, T>(host: H, kind: IoKind<H, T>, status: number, events: number): void {
  const s = kind.state(host);
  if (s.closed) return;
  // An error (POLLERR, e.g. a deleted TUN device) stopped the watcher; the I/O below reports it.
  if (status < 0) s.pollMask = 0;
  if ((status < 0 || (events & POLL_WRITABLE) !== 0) && s.writable !== undefined) {
    const w = s.writable;
    s.writable = undefined;
    w.resolve();
  }
  if (status < 0 || (events & POLL_READABLE) !== 0) serveReaders(host, kind);
  updatePoll(s);
}

/** Rejects every pending read and the waiting writer with `err`; event mode ends. */
export function rejectPending(s: IoState<unknown>, err: VectunError): void {
  for (const r of s.readers.splice(0)) r.reject(err);
  s.flowReader = undefined;
  s.flowing = false;
  const w = s.writable;
  s.writable = undefined;
  w?.reject(err);
}

/** Closes the handle when `s.signal` aborts. */
export function closeOnAbort(s: IoState<unknown>, close: () => Promise<void>): void {
  if (s.signal === undefined) return;
  s.onAbort = () => void close();
  s.signal.addEventListener('abort', s.onAbort, { once: true });
}

/**
 * `close()`: idempotent; stops the watcher, then `release` closes the
 * descriptors (libuv wants the watcher stopped first); pending I/O rejects;
 * `'close'` on the next tick.
 */
export function closeHandle<H extends EventEmitter, T>(host: H, kind: IoKind<H, T>, release: () => void): Promise<void> {
  const s = kind.state(host);
  if (s.closing !== undefined) return s.closing;
  s.closed = true;
  s.flowing = false;
  s.flowReader = undefined;
  s.binding.pollClose(s.poller);
  release();
  if (s.signal !== undefined && s.onAbort !== undefined) s.signal.removeEventListener('abort', s.onAbort);
  rejectPending(s, kind.closedError('pending I/O'));
  s.closing = new Promise<void>((resolve) => {
    process.nextTick(() => {
      host.emit('close');
      resolve();
    });
  });
  return s.closing;
}
