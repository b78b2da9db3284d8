/**
 * vectun: fast Linux TUN devices for Node.js.
 * @module
 */
export { VectunError } from './errors.js';
export type { VectunErrorCode, PacketErrorCode, DeviceErrorCode } from './errors.js';
export { Arena } from './core/arena.js';
export * from './core/checksum.js';
export * from './core/virtio.js';
