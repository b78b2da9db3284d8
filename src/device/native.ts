/**
 * The native addon's interface (native/: addon.c registers the tables of tun.c, netlink.c and poll.c) and its loader.
 *
 * The addon is a handful of syscall-shaped functions plus one poller; every
 * function returns a non-negative result or `-errno`. Policy (offload
 * negotiation, error mapping, events) stays in TypeScript, so the device layer
 * is testable with a fake binding passed in place of the real one.
 * @module
 */
import * as path from 'node:path';
import { VectunError } from '../errors.js';

/** Opaque handle of a `uv_poll` watcher. */
export type PollHandle = { readonly __poller: unique symbol };

/** Readiness bits of {@link NativeBinding.pollSet} (libuv's UV_READABLE/UV_WRITABLE). */
export const POLL_READABLE = 1;
export const POLL_WRITABLE = 2;

/** ioctls taking one integer, by name (numbers depend on the architecture). */
export type TunIoctl =
  | 'TUNSETOFFLOAD'
  | 'TUNSETVNETHDRSZ'
  | 'TUNSETVNETLE'
  | 'TUNSETPERSIST'
  | 'TUNSETOWNER'
  | 'TUNSETGROUP';

/** What the addon exports. All `number` results are `>= 0` or `-errno`. */
export interface NativeBinding {
  /** open(/dev/net/tun, O_RDWR|O_CLOEXEC|O_NONBLOCK) + TUNSETIFF; fd. `''` lets the kernel name it. */
  tunOpen(name: string, flags: number): number;
  /** TUNGETIFF: name and IFF_* flags; -EBADFD once the device is deleted. */
  tunGetIff(fd: number): { name: string; flags: number } | number;
  tunIoctl(fd: number, request: TunIoctl, value: number): number;
  /**
   * TUNGETDEVNETNS (Linux 5.2+): a new descriptor of the network namespace
   * the device is in now (close it), with the namespace's `dev`/`inode` (what
   * `ip netns identify` compares); -errno (ENOTTY or EINVAL before 5.2, EPERM
   * without CAP_NET_ADMIN there, EBADFD once deleted).
   */
  tunNetns(fd: number): { fd: number; dev: number; inode: number } | number;
  setNonBlocking(fd: number): number;
  close(fd: number): number;
  /** if_nametoindex in the caller's network namespace. */
  ifIndex(name: string): number;
  /**
   * Reads frames into slots `i * slotSize` of `arena` until EAGAIN or
   * `maxFrames`; `lengths[i]` = bytes of frame i. Frame count, or -errno when
   * the first read failed.
   */
  readBatch(fd: number, arena: Uint8Array, slotSize: number, maxFrames: number, lengths: Int32Array): number;
  /**
   * One writev per list from `lists[start]` (EINTR retried). `results[i]` =
   * bytes or -errno. Stops at EAGAIN/EBADFD (or EINTR, which the addon
   * retries itself) and returns that list's index; returns `lists.length`
   * when every list was tried.
   */
  writeLists(fd: number, lists: readonly (readonly Uint8Array[])[], start: number, results: Int32Array): number;
  /**
   * Non-blocking NETLINK_ROUTE socket bound to multicast `groups`, created in
   * the network namespace `netnsFd` (the calling thread switches there and
   * back, setns(2)), or in the caller's when it is -1 or omitted.
   */
  nlOpen(groups: number, netnsFd?: number): number;
  nlSend(fd: number, message: Uint8Array): number;
  nlRecv(fd: number, buffer: Uint8Array): number;
  /** A `uv_poll` watcher calling `callback(status, events)`; status < 0 is a libuv error. */
  pollCreate(fd: number, callback: (status: number, events: number) => void): PollHandle | number;
  /** POLL_READABLE | POLL_WRITABLE; 0 stops watching. */
  pollSet(handle: PollHandle, events: number): number;
  /** Stops and releases the watcher; call before closing its fd. */
  pollClose(handle: PollHandle): number;
  pollRef(handle: PollHandle, ref: boolean): number;
}

let loaded: NativeBinding | undefined;

/** The package root (this file is dist/src/device/native.js): where build/ and prebuilds/ are. */
const PACKAGE_ROOT = path.join(__dirname, '..', '..', '..');

/**
 * The addon, found by node-gyp-build under `root`: a source build
 * (`build/Release/vectun.node`, made by node-gyp at install when no prebuild
 * matched, or by `npm run install`) first, else the node-api prebuild for this
 * platform, architecture and libc (`prebuilds/linux-x64/vectun.glibc.node`,
 * shipped in the package). `root` defaults to this package (and the result is
 * cached); tests pass another.
 * @throws VectunError `ERR_TUN_NATIVE` when neither exists or it fails to load.
 */
export function loadBinding(root?: string): NativeBinding {
  if (root === undefined && loaded !== undefined) return loaded;
  const dir = root ?? PACKAGE_ROOT;
  let binding: NativeBinding;
  try {
    const load = require('node-gyp-build') as (dir: string) => unknown;
    binding = load(dir) as NativeBinding;
  } catch (cause) {
    const why = cause instanceof Error ? cause.message.split('\n')[0] : String(cause);
    throw new VectunError(
      'ERR_TUN_NATIVE',
      `cannot load the native addon from ${dir} (${why}): no prebuild in prebuilds/ matches ${process.platform}-${process.arch} ` +
        'and there is no source build in build/Release; install a C toolchain (make, g++, python3) and run `npm rebuild vectun`',
      { cause },
    );
  }
  if (root === undefined) loaded = binding;
  return binding;
}

// Linux errno values the device layer acts on.
export const EPERM = 1;
export const ENOENT = 2;
export const EINTR = 4;
export const EIO = 5;
export const EBADF = 9;
export const EAGAIN = 11;
export const EACCES = 13;
export const EBUSY = 16;
export const ENODEV = 19;
export const EINVAL = 22;
export const EMSGSIZE = 90;
export const EBADFD = 77;

const ERRNO_NAMES: Record<number, string> = {
  [EPERM]: 'EPERM', [ENOENT]: 'ENOENT', [EINTR]: 'EINTR', [EIO]: 'EIO', [EBADF]: 'EBADF',
  [EAGAIN]: 'EAGAIN', [EACCES]: 'EACCES', [EBUSY]: 'EBUSY', [ENODEV]: 'ENODEV',
  [EINVAL]: 'EINVAL', [EMSGSIZE]: 'EMSGSIZE', [EBADFD]: 'EBADFD', 17: 'EEXIST', 95: 'EOPNOTSUPP',
  105: 'ENOBUFS', 100: 'ENETDOWN', 24: 'EMFILE', 99: 'EADDRNOTAVAIL', 101: 'ENETUNREACH', 93: 'EPROTONOSUPPORT',
};

/** `EINVAL`-style name of a positive errno, or `errno N`. */
export function errnoName(errno: number): string {
  return ERRNO_NAMES[errno] ?? `errno ${errno}`;
}

/** The VectunError for a `-errno` result of `syscall`. */
export function syscallError(result: number, syscall: string, what?: string): VectunError {
  const errno = -result;
  const name = errnoName(errno);
  const code =
    errno === EPERM || errno === EACCES ? 'ERR_TUN_PERMISSION' : errno === EBADFD ? 'ERR_TUN_REMOVED' : 'ERR_TUN_SYSCALL';
  return new VectunError(code, `${syscall}${what === undefined ? '' : ` (${what})`} failed: ${name}`, { errno, syscall });
}
