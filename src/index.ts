/**
 * vectun: fast Linux TUN devices for Node.js.
 *
 * - Offload core (pure, no I/O): {@link Segmenter} (GSO split into a recycled
 *   output area) and {@link Coalescer} (GRO coalescing into scatter-gather
 *   write lists), the fast forms for a stream of frames or batches; the
 *   one-shot free functions {@link segment} and {@link coalesce}, whose
 *   results stay valid while held; checksums, the virtio-net header.
 * - Device layer: {@link Tun} (open, batched read/write, offloads, link control
 *   and events), {@link bridge} (forward packets between two devices) and
 *   {@link bridgeQueues} (every queue pair of two multi-queue devices, a worker
 *   thread per further pair).
 * @module
 */
export { VectunError } from './errors.js';
export type { VectunErrorCode, PacketErrorCode, DeviceErrorCode, LabErrorCode, UdpErrorCode, WireGuardErrorCode } from './errors.js';
export { Arena } from './core/arena.js';
export type { WasmSum, WasmCopySum } from './core/arena.js';
export { checksumSum, pseudoHeaderSum, transportChecksumValid } from './core/checksum.js';
export * from './core/virtio.js';
export * from './core/gso.js';
export * from './core/gro.js';
export * from './device/tun.js';
export * from './device/bridge.js';
export * from './device/bridge-queues.js';
