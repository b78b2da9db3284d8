/**
 * Every error vectun throws or reports, in one place.
 *
 * Like Node's own errors, each carries a stable `code` that callers and tests
 * compare against instead of parsing messages (spec D-10). Errors that come
 * from a system call also carry `errno` (positive, e.g. 22 for EINVAL) and
 * `syscall` (e.g. `'writev'`), the way `fs` and `dgram` errors do.
 *
 * This file imports nothing, so the pure packet core may use it.
 * @module
 */

/** Codes for frames and packets the offload core rejects (spec D-10). */
export type PacketErrorCode =
  /** A frame shorter than the 10-byte virtio-net header (HDR-2). */
  | 'ERR_VNET_HDR_SHORT'
  /** gso_type is not NONE, TCPV4, TCPV6 or UDP_L4, or has the ECN bit (HDR-6). */
  | 'ERR_GSO_TYPE_UNSUPPORTED'
  /** A GSO frame with no packet after the header (RD-5.1). */
  | 'ERR_PACKET_EMPTY'
  /** IP version does not match the GSO type, or is neither 4 nor 6 (RD-5.2). */
  | 'ERR_IP_VERSION_MISMATCH'
  /** The packet ends before a header field that must be read (RD-5.2, RD-5.3). */
  | 'ERR_PACKET_TOO_SHORT'
  /** TCP data offset below 5 or above 15 words (RD-5.3). */
  | 'ERR_TCP_HDR_LEN'
  /** Packet shorter than its headers, or hdrLen < csumStart (RD-5.4, RD-5.5). */
  | 'ERR_HDR_LEN'
  /** The checksum field would end beyond the packet (RD-4, RD-5.6). */
  | 'ERR_CSUM_OFFSET'
  /** A GSO frame with gso_size 0 (D-3). */
  | 'ERR_GSO_SIZE_ZERO'
  /** A caller-provided output area cannot hold every segment of a frame (D-5). */
  | 'ERR_OUTPUT_TOO_SMALL';

/** Codes for device-level failures. */
export type DeviceErrorCode =
  /** The handle was closed, or the kernel detached the device (EBADFD). */
  | 'ERR_TUN_CLOSED'
  /** The device was deleted, or moved away, while in use. */
  | 'ERR_TUN_REMOVED'
  /** A system call failed; `errno` and `syscall` say which and why. */
  | 'ERR_TUN_SYSCALL'
  /** Offload was required (`offload: 'require'`) but the kernel refused it. */
  | 'ERR_TUN_OFFLOAD_UNAVAILABLE'
  /** The native addon is missing or failed to load. */
  | 'ERR_TUN_NATIVE'
  /** The process may not create TUN devices (no root / CAP_NET_ADMIN). */
  | 'ERR_TUN_PERMISSION'
  /** `/dev/net/tun` does not exist. */
  | 'ERR_TUN_UNAVAILABLE'
  /** An option or argument has the wrong type or value. */
  | 'ERR_INVALID_ARG'
  /** A netlink request was answered with an error. */
  | 'ERR_NETLINK'
  /** The kernel rejected a coalesced write (EINVAL): GRO was turned off for that protocol (a `'warning'`). */
  | 'ERR_TUN_GRO_FALLBACK'
  /** A worker thread forwarding a queue pair failed outside the bridge loop (crashed, or could not start). */
  | 'ERR_TUN_WORKER';

/** Codes for the lab (namespaces, veth pairs, traffic programs; `src/lab`). */
export type LabErrorCode =
  /** Something the lab needs is missing (capability, `ip`, namespace support); the message says what. */
  | 'ERR_LAB_PREREQUISITE'
  /** An `ip` command failed; the message carries the command and its stderr. */
  | 'ERR_LAB_COMMAND'
  /** A bounded transfer or step did not finish within its time limit. */
  | 'ERR_LAB_TIMEOUT'
  /** A transfer finished but its bytes, count or checksums do not match. */
  | 'ERR_LAB_TRAFFIC';

/** Codes for the batched UDP socket (`src/udp`). */
export type UdpErrorCode =
  /** The socket was closed; pending reads and sends reject with this. */
  | 'ERR_UDP_CLOSED'
  /** An address or port is not valid, or its family cannot be used on this socket (an IPv6 destination on an IPv4 socket). */
  | 'ERR_UDP_INVALID_ENDPOINT'
  /** A datagram is longer than UDP can carry (65507 bytes over IPv4, 65527 over IPv6), or the kernel said EMSGSIZE (`errno` set). */
  | 'ERR_UDP_MESSAGE_SIZE'
  /** The destination answered ICMP port unreachable (ECONNREFUSED, reported on connected sockets). */
  | 'ERR_UDP_CONNECTION_REFUSED'
  /** No route to the destination host (EHOSTUNREACH). */
  | 'ERR_UDP_HOST_UNREACHABLE'
  /** No route to the destination network (ENETUNREACH). */
  | 'ERR_UDP_NETWORK_UNREACHABLE'
  /** Another system call failure; `errno` and `syscall` say which and why. */
  | 'ERR_UDP_SYSCALL'
  /** A segmentation-offload send failed with EIO (the route's device cannot checksum): GSO is now off for this socket (a `'warning'`). */
  | 'ERR_UDP_GSO_FALLBACK';

/** Codes for the WireGuard endpoint (`src/wg`). */
export type WireGuardErrorCode =
  /** A configuration (API object or UAPI `set=1`) was rejected; `errno` is the UAPI reply's. */
  | 'ERR_WG_CONFIG'
  /** The UAPI socket could not be opened or used (folder, bind, a path that is not a socket, a client timeout); `errno`/`syscall` when a system call failed. */
  | 'ERR_WG_UAPI'
  /** Another process already answers on the interface's UAPI socket (`/var/run/wireguard/<ifname>.sock`). */
  | 'ERR_WG_UAPI_IN_USE'
  /** A transport key could not be set up, or the native AEAD was demanded but cannot resolve OpenSSL. */
  | 'ERR_WG_CRYPTO'
  /** A WireGuard message's length does not match its type (148, 92, 64 or >= 32 bytes). */
  | 'ERR_WG_MESSAGE_LENGTH'
  /** A WireGuard message's type is not 1..4, or its three reserved bytes are not zero. */
  | 'ERR_WG_MESSAGE_TYPE'
  /** A key has the wrong length or encoding, or a Diffie-Hellman result is all zeros (low-order point). */
  | 'ERR_WG_KEY'
  /** An AEAD field of a handshake message (static, timestamp, empty) does not authenticate. */
  | 'ERR_WG_DECRYPT'
  /** A handshake initiation carries a static key that belongs to no configured peer. */
  | 'ERR_WG_UNKNOWN_PEER'
  /** A handshake initiation's TAI64N timestamp is not newer than the peer's last accepted one. */
  | 'ERR_WG_REPLAY'
  /** A handshake initiation came sooner than 20 ms after the peer's last accepted one. */
  | 'ERR_WG_FLOOD'
  /** A handshake step was called in the wrong state (e.g. a response without an initiation sent). */
  | 'ERR_WG_HANDSHAKE_STATE'
  /** No free random 32-bit index was found for a handshake (the index table is full). */
  | 'ERR_WG_INDEX_TABLE_FULL';

/** Every code a {@link VectunError} may carry. */
export type VectunErrorCode = PacketErrorCode | DeviceErrorCode | LabErrorCode | UdpErrorCode | WireGuardErrorCode;

/** The one error class of vectun. Tell failures apart by `code`. */
export class VectunError extends Error {
  /** Stable identifier, e.g. `'ERR_GSO_TYPE_UNSUPPORTED'`. */
  readonly code: VectunErrorCode;
  /** Positive errno for failures that come from a system call. */
  readonly errno?: number;
  /** The failing system call, e.g. `'writev'`. */
  readonly syscall?: string;

  constructor(
    code: VectunErrorCode,
    message: string,
    details?: { errno?: number; syscall?: string; cause?: unknown },
  ) {
    super(message, details?.cause === undefined ? undefined : { cause: details.cause });
    this.name = 'VectunError';
    this.code = code;
    if (details?.errno !== undefined) this.errno = details.errno;
    if (details?.syscall !== undefined) this.syscall = details.syscall;
  }
}

/** Shorthand used by the packet core for frame validation failures. */
export function packetError(code: PacketErrorCode, message: string): VectunError {
  return new VectunError(code, message);
}
