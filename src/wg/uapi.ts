/**
 * The cross-platform WireGuard configuration protocol (UAPI) as text, the way
 * wireguard-go's `device/uapi.go` speaks it and the stock `wg` tool expects
 * it (https://www.wireguard.com/xplatform/#configuration-protocol). Pure: no
 * sockets, no device; the server in `uapi-server.ts` feeds it lines.
 *
 * - `get=1` → {@link formatUapiGet}: `private_key`, `listen_port`, `fwmark`
 *   (each only when set), then per peer `public_key`, `preshared_key`,
 *   `protocol_version`, `endpoint` (when known; IPv6 in brackets),
 *   `last_handshake_time_sec/nsec`, `tx_bytes`, `rx_bytes`,
 *   `persistent_keepalive_interval`, `allowed_ip` lines. Keys in lowercase hex.
 * - `set=1` → {@link parseUapiSet}: the same keys and value rules as
 *   wireguard-go (Go's `strconv.ParseUint`, `netip.ParseAddrPort`,
 *   `netip.ParsePrefix`, exact 32-byte hex keys), into a
 *   {@link WgConfigUpdate}.
 * - Replies end with `errno=<n>` and a blank line ({@link formatUapiErrno});
 *   like wireguard-go, a failure carries the negated errno (`errno=-22`),
 *   which `wg` turns back into `strerror(22)`.
 *
 * Secrets: no message built here ever contains a private or preshared key,
 * nor the text of a line that failed to parse (it might be one).
 * @module
 */
import { formatIPv4, formatIPv6, parseIPv4, parseIPv6 } from '../net/ip.js';
import type { WgConfigUpdate, WgDeviceStatus, WgEndpoint, WgKey, WgPeerUpdate } from './config.js';
import { clampPrivateKey, isZero, keyFromHex, keyToHex } from './crypto.js';

/**
 * The errnos a UAPI reply carries (positive here; negated on the wire), as
 * wireguard-go's `ipc/uapi_unix.go` assigns them.
 */
export const UapiErrno = {
  /** A transaction could not be read (a line over 64 KiB, as Go's bufio.Scanner limit). */
  EIO: 5,
  /** A bad value, an unknown key, or trailing bytes after `get=1`. */
  EINVAL: 22,
  /** A `set=1` line without `=`. */
  EPROTO: 71,
  /** The listen port (or fwmark) could not be applied to the socket. */
  EADDRINUSE: 98,
  /** Any other failure of the device (wireguard-go's "other UAPI error", ENOANO). */
  ENOANO: 55,
} as const;

/** One of {@link UapiErrno}'s values, or another errno a device reported. */
export type UapiErrnoValue = number;

/** Why a `set=1` transaction stopped: the errno of the reply and a message safe to log. */
export interface UapiSetError {
  /** Positive errno for the reply (one of {@link UapiErrno}). */
  errno: UapiErrnoValue;
  /** Names the line number and key, never a key's value. */
  message: string;
}

/**
 * The outcome of parsing a `set=1` body. As in wireguard-go, which applies a
 * transaction line by line, the lines before a failing one still take effect:
 * `update` holds them, and the reply carries `error`'s errno.
 */
export interface UapiSetParse {
  /** The transaction's lines up to the first bad one, as an update. */
  update: WgConfigUpdate;
  /** The first bad line's failure, or null when every line parsed. */
  error: UapiSetError | null;
}

/** Longest line a `set=1` body may have (Go's bufio.MaxScanTokenSize, which wireguard-go's scanner uses). */
export const UAPI_MAX_LINE_BYTES = 64 * 1024;

// ---------------------------------------------------------------------------
// get=1

/**
 * The body of a `get=1` reply (without the `errno=0` line): one `key=value`
 * line each, in wireguard-go's order. The private key appears only here, as
 * the protocol demands; `wg show` hides it, `wg showconf` prints it.
 */
export function formatUapiGet(status: WgDeviceStatus): string {
  const lines: string[] = [];
  if (status.privateKey !== null && !isZero(status.privateKey)) lines.push(`private_key=${keyToHex(status.privateKey)}`);
  if (status.listenPort !== 0) lines.push(`listen_port=${status.listenPort}`);
  if (status.fwmark !== 0) lines.push(`fwmark=${status.fwmark}`);
  for (const peer of status.peers) {
    lines.push(`public_key=${keyToHex(peer.publicKey)}`);
    lines.push(`preshared_key=${keyToHex(peer.presharedKey ?? new Uint8Array(32))}`);
    lines.push(`protocol_version=${peer.protocolVersion}`);
    if (peer.endpoint !== null) lines.push(`endpoint=${formatEndpoint(peer.endpoint)}`);
    const handshake = peer.lastHandshake ?? { seconds: 0, nanoseconds: 0 };
    lines.push(`last_handshake_time_sec=${Math.trunc(handshake.seconds)}`);
    lines.push(`last_handshake_time_nsec=${Math.trunc(handshake.nanoseconds)}`);
    lines.push(`tx_bytes=${Math.trunc(peer.txBytes)}`);
    lines.push(`rx_bytes=${Math.trunc(peer.rxBytes)}`);
    lines.push(`persistent_keepalive_interval=${peer.persistentKeepalive}`);
    for (const cidr of peer.allowedIps) lines.push(`allowed_ip=${canonicalPrefix(cidr) ?? cidr}`);
  }
  return lines.map((l) => `${l}\n`).join('');
}

/** The closing line of every reply and the blank line after it: `errno=0`, or `errno=-<errno>` for a failure. */
export function formatUapiErrno(errno: number): string {
  return `errno=${errno === 0 ? 0 : -Math.abs(errno)}\n\n`;
}

/** `ip:port`, IPv6 in brackets (Go's `netip.AddrPort.String`, what wireguard-go prints). */
export function formatEndpoint(endpoint: WgEndpoint): string {
  return endpoint.address.includes(':') ? `[${endpoint.address}]:${endpoint.port}` : `${endpoint.address}:${endpoint.port}`;
}

// ---------------------------------------------------------------------------
// set=1

/**
 * Parses the lines of a `set=1` body (without the closing blank line; a
 * trailing `\r` is dropped as Go's line scanner does). Device keys
 * (`private_key`, `listen_port`, `fwmark`, `replace_peers`) come first; each
 * `public_key` line starts a peer section (`remove`, `update_only`,
 * `preshared_key`, `endpoint`, `persistent_keepalive_interval`,
 * `replace_allowed_ips`, `allowed_ip`, `protocol_version`).
 *
 * Errors, as wireguard-go: a line without `=` is EPROTO; an unknown key, a
 * value that does not parse, or a flag other than `true` is EINVAL; a line
 * longer than {@link UAPI_MAX_LINE_BYTES} is EIO. Parsing stops at the first
 * error; lines after it are not looked at.
 *
 * Left to the device, which knows its state: a peer whose key is the
 * device's own public key is ignored, `update_only` skips a peer that does
 * not exist, a port that cannot be bound is EADDRINUSE.
 */
export function parseUapiSet(lines: readonly string[]): UapiSetParse {
  const update: WgConfigUpdate = {};
  let peer: WgPeerUpdate | null = null;
  // A removed peer's section still validates its lines, but they change nothing.
  let peerRemoved = false;
  const fail = (errno: number, lineNo: number, message: string): UapiSetParse => ({
    update,
    error: { errno, message: `line ${lineNo}: ${message}` },
  });

  for (let i = 0; i < lines.length; i++) {
    const lineNo = i + 1;
    let line = lines[i]!;
    if (line.endsWith('\r')) line = line.slice(0, -1);
    if (line.length > UAPI_MAX_LINE_BYTES) return fail(UapiErrno.EIO, lineNo, 'line too long');
    const eq = line.indexOf('=');
    // The line itself is not quoted: it could be a key without its '='.
    if (eq < 0) return fail(UapiErrno.EPROTO, lineNo, 'failed to parse line (no "=")');
    const key = line.slice(0, eq);
    const value = line.slice(eq + 1);

    if (key === 'public_key') {
      const publicKey = parseHexKey(value);
      if (publicKey === null) return fail(UapiErrno.EINVAL, lineNo, 'failed to get peer by public key: not 64 hex digits');
      peer = { publicKey };
      peerRemoved = false;
      (update.peers ??= []).push(peer);
      continue;
    }

    if (peer === null) {
      const problem = applyDeviceLine(update, key, value);
      if (problem !== null) return fail(UapiErrno.EINVAL, lineNo, problem);
    } else {
      const problem = applyPeerLine(peer, peerRemoved, key, value);
      if (problem !== null) return fail(UapiErrno.EINVAL, lineNo, problem);
      if (key === 'remove') {
        // What the section set before is moot: the peer goes.
        const removed: WgPeerUpdate = { publicKey: peer.publicKey, remove: true };
        update.peers![update.peers!.length - 1] = removed;
        peer = removed;
        peerRemoved = true;
      }
    }
  }
  return { update, error: null };
}

/** Applies one device-section line; returns the problem, or null. */
function applyDeviceLine(update: WgConfigUpdate, key: string, value: string): string | null {
  switch (key) {
    case 'private_key': {
      const privateKey = parseHexKey(value);
      if (privateKey === null) return 'failed to set private_key: not 64 hex digits';
      // All zeros removes the key; any other is clamped, as wireguard-go stores it (RFC 7748 §5).
      update.privateKey = isZero(privateKey) ? null : clampPrivateKey(privateKey);
      return null;
    }
    case 'listen_port': {
      const port = parseGoUint(value, 0xffff);
      if (port === null) return `failed to parse listen_port: ${quote(value)}`;
      update.listenPort = port;
      return null;
    }
    case 'fwmark': {
      const mark = parseGoUint(value, 0xffff_ffff);
      if (mark === null) return `invalid fwmark: ${quote(value)}`;
      update.fwmark = mark;
      return null;
    }
    case 'replace_peers':
      if (value !== 'true') return `failed to set replace_peers, invalid value: ${quote(value)}`;
      // Every peer named before this line is removed again, as wireguard-go's RemoveAllPeers does; there are none yet.
      update.replacePeers = true;
      return null;
    default:
      return `invalid UAPI device key: ${quote(key)}`;
  }
}

/** Applies one peer-section line; returns the problem, or null. */
function applyPeerLine(peer: WgPeerUpdate, removed: boolean, key: string, value: string): string | null {
  switch (key) {
    case 'update_only':
      if (value !== 'true') return `failed to set update only, invalid value: ${quote(value)}`;
      if (!removed) peer.updateOnly = true;
      return null;
    case 'remove':
      // The caller replaces the section with a removal.
      if (value !== 'true') return `failed to set remove, invalid value: ${quote(value)}`;
      return null;
    case 'preshared_key': {
      const psk = parseHexKey(value);
      if (psk === null) return 'failed to set preshared key: not 64 hex digits';
      if (!removed) peer.presharedKey = isZero(psk) ? null : psk;
      return null;
    }
    case 'endpoint': {
      const endpoint = parseAddrPort(value);
      if (endpoint === null) return `failed to set endpoint ${quote(value)}`;
      if (!removed) peer.endpoint = endpoint;
      return null;
    }
    case 'persistent_keepalive_interval': {
      const seconds = parseGoUint(value, 0xffff);
      if (seconds === null) return `failed to set persistent keepalive interval: ${quote(value)}`;
      if (!removed) peer.persistentKeepalive = seconds;
      return null;
    }
    case 'replace_allowed_ips':
      if (value !== 'true') return `failed to replace allowedips, invalid value: ${quote(value)}`;
      if (!removed) {
        // Allowed IPs added earlier in this section are dropped too, as in wireguard-go.
        peer.replaceAllowedIps = true;
        peer.allowedIps = [];
      }
      return null;
    case 'allowed_ip': {
      const prefix = canonicalPrefix(value);
      if (prefix === null) return `failed to set allowed ip: ${quote(value)}`;
      if (!removed) (peer.allowedIps ??= []).push(prefix);
      return null;
    }
    case 'protocol_version':
      if (value !== '1') return `invalid protocol version: ${quote(value)}`;
      return null;
    default:
      return `invalid UAPI peer key: ${quote(key)}`;
  }
}

function quote(value: string): string {
  return JSON.stringify(value.length > 64 ? `${value.slice(0, 64)}...` : value);
}

// ---------------------------------------------------------------------------
// values

/** Exactly 64 hex digits (either case, as Go's hex.DecodeString) as 32 bytes, else null. */
function parseHexKey(text: string): WgKey | null {
  try {
    return keyFromHex(text);
  } catch {
    return null;
  }
}

/** Go's `strconv.ParseUint(s, 10, bits)`: ASCII digits only (no sign, no spaces), within `max`. */
function parseGoUint(text: string, max: number): number | null {
  if (!/^[0-9]+$/.test(text)) return null;
  const n = BigInt(text);
  return n <= BigInt(max) ? Number(n) : null;
}

/**
 * Go's `netip.ParseAddrPort`: `a.b.c.d:port` or `[v6%zone]:port`; IPv4 must
 * not be bracketed, IPv6 must be; the port as `strconv.ParseUint(p, 10, 16)`.
 * The address is returned in canonical form.
 */
export function parseAddrPort(text: string): WgEndpoint | null {
  let host: string;
  let portText: string;
  if (text.startsWith('[')) {
    const close = text.indexOf(']');
    if (close < 0 || text[close + 1] !== ':') return null;
    host = text.slice(1, close);
    portText = text.slice(close + 2);
    const address = parseIp(host);
    if (address === null || address.version !== 6) return null;
    const port = parseGoUint(portText, 0xffff);
    return port === null ? null : { address: formatIp(address), port };
  }
  const colon = text.lastIndexOf(':');
  if (colon < 0) return null;
  host = text.slice(0, colon);
  portText = text.slice(colon + 1);
  const address = parseIp(host);
  if (address === null || address.version !== 4) return null;
  const port = parseGoUint(portText, 0xffff);
  return port === null ? null : { address: formatIp(address), port };
}

/**
 * Go's `netip.ParsePrefix` followed by masking (wireguard-go's allowed-IPs
 * table keeps prefixes masked, so `get=1` reports `198.18.0.0/24` for
 * `198.18.0.7/24`): canonical `address/bits`, or null. No zone, bits without
 * sign or leading zeros, at most 32 or 128.
 */
export function canonicalPrefix(text: string): string | null {
  const slash = text.lastIndexOf('/');
  if (slash < 0) return null;
  const address = parseIp(text.slice(0, slash));
  if (address === null || address.zone !== '') return null;
  const bitsText = text.slice(slash + 1);
  if (!/^(0|[1-9][0-9]{0,2})$/.test(bitsText)) return null;
  const bits = Number(bitsText);
  const width = address.version === 4 ? 32 : 128;
  if (bits > width) return null;
  const bytes = address.bytes;
  for (let bit = bits; bit < width; bit++) bytes[bit >> 3]! &= ~(0x80 >> (bit & 7));
  return `${formatIp(address)}/${bits}`;
}

/** A parsed IP address: 4 or 16 bytes, and an IPv6 zone ('' for none). */
interface IpAddress {
  version: 4 | 6;
  bytes: Uint8Array;
  zone: string;
}

/**
 * Go's `netip.ParseAddr` rules: the shared strict parser (dotted quad
 * without leading zeros; IPv6 with one `::` at most and an optional trailing
 * dotted quad), chosen by the presence of a colon as Go does, plus Go's zone
 * rule: IPv6 only, any non-empty text after the first `%`.
 */
function parseIp(text: string): IpAddress | null {
  if (!text.includes(':')) {
    const bytes = parseIPv4(text);
    return bytes === undefined ? null : { version: 4, bytes, zone: '' };
  }
  const percent = text.indexOf('%');
  const zone = percent < 0 ? '' : text.slice(percent + 1);
  if (percent >= 0 && zone === '') return null;
  const bytes = parseIPv6(percent < 0 ? text : text.slice(0, percent));
  return bytes === undefined ? null : { version: 6, bytes, zone };
}

/** Go's `netip.Addr.String`: dotted quad; RFC 5952 for IPv6 (`::ffff:a.b.c.d` for IPv4-mapped), with `%zone`. */
function formatIp(address: IpAddress): string {
  if (address.version === 4) return formatIPv4(address.bytes);
  return formatIPv6(address.bytes, { mappedAsDottedQuad: true }) + (address.zone === '' ? '' : `%${address.zone}`);
}
