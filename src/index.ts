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
 * - WireGuard: {@link WgDevice} (a userspace WireGuard interface on a Tun and
 *   a UdpSocket, configured like wireguard-go through {@link WgControl}).
 * @module
 */
export { VectunError } from './errors.js';
export type { VectunErrorCode, PacketErrorCode, DeviceErrorCode, LabErrorCode, UdpErrorCode, WireGuardErrorCode } from './errors.js';
export { Arena } from './core/arena.js';
export type { WasmSum, WasmCopySum } from './core/arena.js';
export { checksumSum, pseudoHeaderSum, repairZeroUdp6Checksum, transportChecksumValid } from './core/checksum.js';
export * from './core/virtio.js';
export * from './core/gso.js';
export * from './core/gro.js';
export * from './device/tun.js';
export * from './device/bridge.js';
export * from './udp/index.js';
export { WgDevice, WG_SOCKET_BUFFER, HANDSHAKE_QUEUE_SIZE, UNDER_LOAD_QUEUE } from './wg/device.js';
export type { WgDeviceOptions, WgTunnel, WgSocket, WgSocketFactory, WgIoResult, WgDeviceStats, WgSendStats, WgReceiveStats, HandshakeCounters } from './wg/device.js';
export type { SendDrops, SendSocket } from './wg/send.js';
export type { ReceiveDrops } from './wg/receive.js';
export { createTransportCipher } from './wg/aead.js';
export type { TransportCipher, TransportKey, TransportCipherOptions } from './wg/aead.js';
export type { WgKey, WgEndpoint, WgPeerConfig, WgDeviceConfig, WgPeerUpdate, WgConfigUpdate, WgPeerStatus, WgDeviceStatus, WgControl } from './wg/config.js';
export * from './device/bridge-queues.js';
