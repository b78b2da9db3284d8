/**
 * The batched UDP room: {@link UdpSocket} and its value types.
 * @module
 */
export { UdpSocket, UDP_RECV_SLOT, UDP_DEFAULT_BATCH, udpError } from './socket.js';
export type { UdpOpenOptions, UdpCapabilities, UdpBatch, UdpTransmit, UdpSendFailure, UdpSendResult, UdpStats, UdpSocketEvents } from './socket.js';
export { UdpEndpoint } from './address.js';
export { UDP_MAX_SEGMENTS, UDP_GSO_MAX_BYTES, UDP_MAX_PAYLOAD_V4, UDP_MAX_PAYLOAD_V6 } from './plan.js';
