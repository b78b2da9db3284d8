/**
 * Opening a TUN device: option validation, `TUNSETIFF` on every queue, and
 * offload negotiation.
 *
 * Spec rules: DEV-1..DEV-3, DEV-9, D-7, D-8; style rule 2 (what the kernel
 * accepted is probed once, here, and is the single source of truth).
 * @module
 */
import { VectunError } from '../errors.js';
import { VNET_HDR_LEN } from '../core/virtio.js';
import { EACCES, EINVAL, ENODEV, ENOENT, loadBinding, syscallError, type NativeBinding } from './native.js';
import { invalid, optionalBool, optionalInt } from '../options.js';

// linux/if_tun.h
const IFF_TUN = 0x0001;
const IFF_MULTI_QUEUE = 0x0100;
const IFF_NO_PI = 0x1000;
/** IFF_VNET_HDR: frames carry the virtio-net header. */
export const IFF_VNET_HDR = 0x4000;
const TUN_F_CSUM = 0x01;
const TUN_F_TSO4 = 0x02;
const TUN_F_TSO6 = 0x04;
const TUN_F_USO4 = 0x20; // kernel 6.2+; missing from older headers
const TUN_F_USO6 = 0x40;

const IFNAMSIZ = 16;
const BIG_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 0;

/** What the kernel accepted at open (`TUNSETIFF`, `TUNSETOFFLOAD`); the single source of truth. */
export interface TunOffload {
  /** Frames carry the 10-byte virtio-net header (IFF_VNET_HDR). */
  readonly vnetHdr: boolean;
  /** TUN_F_CSUM: partial checksums in both directions. */
  readonly csum: boolean;
  /** TUN_F_TSO4: IPv4 TCP super-packets in both directions; enables TCP GRO. */
  readonly tso4: boolean;
  /** TUN_F_TSO6: IPv6 TCP super-packets in both directions. */
  readonly tso6: boolean;
  /** TUN_F_USO4 (kernel 6.2+): IPv4 UDP super-packets; enables UDP GRO. */
  readonly uso4: boolean;
  /** TUN_F_USO6 (kernel 6.2+): IPv6 UDP super-packets. */
  readonly uso6: boolean;
}

/** Options of {@link Tun.open}. */
export interface TunOpenOptions {
  /** Interface name (<= 15 bytes, may contain `%d`); default: the kernel picks `tunN`. */
  name?: string;
  /** true (default): negotiate offloads, falling back if refused (D-8); `'require'`: fail instead; false: plain packets. */
  offload?: boolean | 'require';
  /** Queues (IFF_MULTI_QUEUE when > 1); default 1. */
  queues?: number;
  /** TUNSETPERSIST: the device outlives its descriptors. */
  persist?: boolean;
  /** TUNSETOWNER uid. */
  owner?: number;
  /** TUNSETGROUP gid. */
  group?: number;
  /** Frames per read (1..1024); default 128 with virtio headers (DEV-7). */
  batchSize?: number;
  /** Closes the device when aborted. */
  signal?: AbortSignal;
  /** @internal A replacement for the native addon (tests). */
  binding?: NativeBinding;
}

/** Options of {@link Tun.fromFd}. */
export type TunFromFdOptions = Pick<TunOpenOptions, 'offload' | 'batchSize' | 'signal' | 'binding'>;

/** Descriptors attached to one device and what the kernel accepted on them. */
export interface OpenedDevice {
  binding: NativeBinding;
  /** Queue descriptors; [0] is the Tun's own. */
  fds: number[];
  name: string;
  offload: TunOffload;
}

const PLAIN: TunOffload = Object.freeze({ vnetHdr: false, csum: false, tso4: false, tso6: false, uso4: false, uso6: false });

function validateCommon(o: TunFromFdOptions): void {
  if (o.offload !== undefined && typeof o.offload !== 'boolean' && o.offload !== 'require') {
    throw invalid(`options.offload must be true, false or 'require', got ${String(o.offload)}`);
  }
  optionalInt(o.batchSize, 'options.batchSize', 1, 1024);
  if (o.signal !== undefined && !(o.signal instanceof AbortSignal)) throw invalid('options.signal must be an AbortSignal');
}

/**
 * Validates `options`, opens every queue (DEV-1, IFF_MULTI_QUEUE), negotiates
 * offloads and applies persist/owner/group. Closes what it opened on failure.
 */
export function openDevice(options: TunOpenOptions): OpenedDevice {
  if (options === null || typeof options !== 'object') throw invalid('options must be an object');
  validateCommon(options);
  const name = options.name ?? '';
  if (typeof name !== 'string' || Buffer.byteLength(name) >= IFNAMSIZ) {
    throw invalid(`options.name must be a string of at most ${IFNAMSIZ - 1} bytes`);
  }
  const queues = optionalInt(options.queues, 'options.queues', 1, 256) ?? 1;
  const persist = optionalBool(options.persist, 'options.persist');
  const owner = optionalInt(options.owner, 'options.owner', 0, 0xfffffffe);
  const group = optionalInt(options.group, 'options.group', 0, 0xfffffffe);
  options.signal?.throwIfAborted();
  const b = options.binding ?? loadBinding();
  const mode = options.offload ?? true;

  const fds: number[] = [];
  try {
    const base = IFF_TUN | IFF_NO_PI | (queues > 1 ? IFF_MULTI_QUEUE : 0);
    let vnet = mode !== false;
    let fd = b.tunOpen(name, base | (vnet ? IFF_VNET_HDR : 0));
    // D-8: a kernel without IFF_VNET_HDR gets plain packets, unless offload is required.
    if (fd === -EINVAL && vnet && mode !== 'require') {
      vnet = false;
      fd = b.tunOpen(name, base);
    }
    if (fd < 0) throw openError(fd);
    fds.push(fd);
    const iff = b.tunGetIff(fd);
    if (typeof iff === 'number') throw syscallError(iff, 'ioctl', 'TUNGETIFF');
    for (let q = 1; q < queues; q++) {
      const qfd = b.tunOpen(iff.name, base | (vnet ? IFF_VNET_HDR : 0));
      if (qfd < 0) throw openError(qfd);
      fds.push(qfd);
    }
    const offload = vnet ? negotiate(b, fds, mode) : PLAIN;
    if (persist !== undefined) ioctlOrThrow(b, fd, 'TUNSETPERSIST', persist ? 1 : 0);
    if (owner !== undefined) ioctlOrThrow(b, fd, 'TUNSETOWNER', owner);
    if (group !== undefined) ioctlOrThrow(b, fd, 'TUNSETGROUP', group);
    return { binding: b, fds, name: iff.name, offload };
  } catch (err) {
    closeAll(b, fds);
    throw err;
  }
}

/**
 * Validates an adopted descriptor (DEV-2): non-blocking, still attached, and
 * offloads negotiated only if it was opened with IFF_VNET_HDR. The caller
 * keeps ownership until the Tun exists.
 */
export function adoptDescriptor(fd: number, options: TunFromFdOptions): OpenedDevice {
  if (!Number.isInteger(fd) || fd < 0) throw invalid(`fd must be a non-negative integer, got ${String(fd)}`);
  if (options === null || typeof options !== 'object') throw invalid('options must be an object');
  validateCommon(options);
  options.signal?.throwIfAborted();
  const b = options.binding ?? loadBinding();
  const nb = b.setNonBlocking(fd);
  if (nb < 0) throw syscallError(nb, 'fcntl', 'O_NONBLOCK');
  const iff = b.tunGetIff(fd);
  if (typeof iff === 'number') throw syscallError(iff, 'ioctl', 'TUNGETIFF');
  const offload = (iff.flags & IFF_VNET_HDR) !== 0 ? negotiate(b, [fd], options.offload ?? true) : PLAIN;
  return { binding: b, fds: [fd], name: iff.name, offload };
}

export function closeAll(b: NativeBinding, fds: readonly number[]): void {
  for (const fd of fds) b.close(fd);
}

/** DEV-3 + D-8: TSO first, then USO; what the kernel accepted. */
function negotiate(b: NativeBinding, fds: readonly number[], mode: boolean | 'require'): TunOffload {
  for (const fd of fds) {
    // D-7: set the header size explicitly, and little-endian on big-endian hosts (HDR-2).
    const sz = b.tunIoctl(fd, 'TUNSETVNETHDRSZ', VNET_HDR_LEN);
    if (sz < 0) throw syscallError(sz, 'ioctl', 'TUNSETVNETHDRSZ');
    if (BIG_ENDIAN) {
      const le = b.tunIoctl(fd, 'TUNSETVNETLE', 1);
      if (le < 0) throw syscallError(le, 'ioctl', 'TUNSETVNETLE');
    }
  }
  const tcp = TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6; // DEV-3 step 1: 0x07
  const all = tcp | TUN_F_USO4 | TUN_F_USO6; // DEV-3 step 3: 0x67
  const set = (flags: number): number => {
    for (const fd of fds) {
      const r = b.tunIoctl(fd, 'TUNSETOFFLOAD', flags);
      if (r < 0) return r;
    }
    return 0;
  };
  if (mode !== false && set(all) === 0) {
    return { vnetHdr: true, csum: true, tso4: true, tso6: true, uso4: true, uso6: true };
  }
  // Kernels before 6.2 reject the USO bits with EINVAL (DEV-3 step 3): TCP only.
  const r = mode === false ? -EINVAL : set(tcp);
  if (r === 0) return { vnetHdr: true, csum: true, tso4: true, tso6: true, uso4: false, uso6: false };
  if (mode === 'require') {
    throw new VectunError('ERR_TUN_OFFLOAD_UNAVAILABLE', 'the kernel refused TUNSETOFFLOAD for TCP segmentation offload', {
      errno: -r, syscall: 'ioctl',
    });
  }
  // D-8: no offload, headers stay (all-zero on write, gso NONE on read).
  set(0);
  return { vnetHdr: true, csum: false, tso4: false, tso6: false, uso4: false, uso6: false };
}

/** tunOpen does open() then TUNSETIFF; these errnos can only come from the open. */
const OPEN_ERRNOS = new Set([ENOENT, ENODEV, EACCES, 23 /* ENFILE */, 24 /* EMFILE */]);

function openError(result: number): VectunError {
  if (result === -ENOENT || result === -ENODEV) {
    return new VectunError('ERR_TUN_UNAVAILABLE', '/dev/net/tun is not available (is the tun module loaded?)', {
      errno: -result, syscall: 'open',
    });
  }
  return OPEN_ERRNOS.has(-result) ? syscallError(result, 'open', '/dev/net/tun') : syscallError(result, 'ioctl', 'TUNSETIFF');
}

function ioctlOrThrow(b: NativeBinding, fd: number, request: 'TUNSETPERSIST' | 'TUNSETOWNER' | 'TUNSETGROUP', value: number): void {
  const r = b.tunIoctl(fd, request, value);
  if (r < 0) throw syscallError(r, 'ioctl', request);
}
