/**
 * WireGuard configuration and status as plain objects: the library API's
 * configuration, and what the UAPI protocol (`get=1` / `set=1`, as spoken by
 * `wg` and wireguard-go) maps to and from. Pure types, no I/O.
 *
 * A full configuration ({@link WgDeviceConfig}) is what a caller hands to the
 * device at creation; an update ({@link WgConfigUpdate}) is one `set=1`
 * transaction: incremental, applied in order, with the same semantics as
 * wireguard-go's `IpcSet` (`replace_peers`, `remove`, `update_only`,
 * `replace_allowed_ips`).
 * @module
 */

/** A Curve25519 key or a preshared key: exactly 32 bytes. */
export type WgKey = Uint8Array;

/** A peer's UDP endpoint. IPv6 addresses without brackets. */
export interface WgEndpoint {
  /** Numeric IPv4 or IPv6 address (no DNS). */
  address: string;
  /** UDP port, 1..65535. */
  port: number;
}

/** One peer of a full configuration. */
export interface WgPeerConfig {
  /** The peer's Curve25519 public key (identifies the peer). */
  publicKey: WgKey;
  /** Omitted or `null`: no preshared key (all zeros on the wire). */
  presharedKey?: WgKey | null;
  /** Omitted: not known yet (the peer must initiate; roaming sets it). */
  endpoint?: WgEndpoint | null;
  /** Seconds between keepalives when idle; 0 or omitted: off. */
  persistentKeepalive?: number;
  /** CIDRs, e.g. `198.18.0.0/24`, `2001:2::/48`. */
  allowedIps?: string[];
}

/** A full device configuration (the library API's form). */
export interface WgDeviceConfig {
  /** Omitted or `null`: no private key; the device handles no handshakes. */
  privateKey?: WgKey | null;
  /** 0 or omitted: the kernel picks a port. */
  listenPort?: number;
  /** SO_MARK for the UDP socket; 0 or omitted: none. */
  fwmark?: number;
  /** The peers. */
  peers?: WgPeerConfig[];
}

/** One peer's part of a {@link WgConfigUpdate}; `undefined` fields stay as they are. */
export interface WgPeerUpdate {
  /** Which peer (created unless {@link updateOnly}). */
  publicKey: WgKey;
  /** Remove this peer (UAPI `remove=true`); other fields are ignored. */
  remove?: boolean;
  /** Change the peer only if it exists (UAPI `update_only=true`). */
  updateOnly?: boolean;
  /** `null`: clear the preshared key. */
  presharedKey?: WgKey | null;
  /** New endpoint. */
  endpoint?: WgEndpoint;
  /** Seconds between keepalives when idle; 0: off. */
  persistentKeepalive?: number;
  /** Drop the peer's allowed IPs before adding {@link allowedIps}. */
  replaceAllowedIps?: boolean;
  /** CIDRs to add, in order. */
  allowedIps?: string[];
}

/** One `set=1` transaction; `undefined` fields stay as they are. */
export interface WgConfigUpdate {
  /** `null`: remove the private key. */
  privateKey?: WgKey | null;
  /** New UDP port; 0: any. */
  listenPort?: number;
  /** 0: remove the mark. */
  fwmark?: number;
  /** Remove every peer before applying {@link peers}. */
  replacePeers?: boolean;
  /** Peer changes, applied in order. */
  peers?: WgPeerUpdate[];
}

/** A peer as `get=1` reports it. */
export interface WgPeerStatus {
  /** The peer's public key. */
  publicKey: WgKey;
  /** `null`: none. */
  presharedKey: WgKey | null;
  /** `null`: not known yet. */
  endpoint: WgEndpoint | null;
  /** Seconds; 0: off. */
  persistentKeepalive: number;
  /** Canonical CIDRs. */
  allowedIps: string[];
  /** Wall-clock time of the last completed handshake; `null`: never. */
  lastHandshake: {
    /** Seconds since the Unix epoch. */
    seconds: number;
    /** Nanoseconds within that second. */
    nanoseconds: number;
  } | null;
  /** Bytes received from the peer. */
  rxBytes: number;
  /** Bytes sent to the peer. */
  txBytes: number;
  /** Always 1. */
  protocolVersion: number;
}

/** The device as `get=1` reports it. */
export interface WgDeviceStatus {
  /** `null`: none set. */
  privateKey: WgKey | null;
  /** Derived from the private key; `null` without one. */
  publicKey: WgKey | null;
  /** The bound UDP port. */
  listenPort: number;
  /** 0: none. */
  fwmark: number;
  /** The peers. */
  peers: WgPeerStatus[];
}

/**
 * What the UAPI server needs from a device: a status snapshot and an update.
 * `update` rejects with a `VectunError` of code `ERR_WG_CONFIG` whose `errno`
 * is the positive errno the UAPI reply carries (`errno=<n>`), as wireguard-go
 * does (EINVAL for a bad value, EADDRINUSE for a port in use, ...).
 */
export interface WgControl {
  /** The current configuration and counters (`get=1`). */
  status(): WgDeviceStatus;
  /** Applies one `set=1` transaction. */
  update(update: WgConfigUpdate): Promise<void>;
}
