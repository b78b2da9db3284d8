/**
 * UDP endpoints: address + port validated once, with the kernel's `sockaddr`
 * bytes built once and cached, so a send to a known endpoint costs no parsing.
 *
 * Pure (no Node APIs, no I/O): `struct sockaddr_in` (16 bytes) and
 * `struct sockaddr_in6` (28 bytes) as ip(7) and ipv6(7) define them; the
 * family field is host byte order, port and address network byte order.
 * IPv4-mapped IPv6 addresses (`::ffff:a.b.c.d`, RFC 4291 section 2.5.5.2)
 * are shown as IPv4: on a dual-stack socket that is how an IPv4 peer arrives.
 * @module
 */
import { VectunError } from '../errors.js';
import { formatIPv4, formatIPv6, parseIPv4, parseIPv6 } from '../net/ip.js';

/** AF_INET (linux/socket.h). */
export const AF_INET = 2;
/** AF_INET6 (linux/socket.h). */
export const AF_INET6 = 10;
/** sizeof(struct sockaddr_in). */
export const SOCKADDR_IN_LEN = 16;
/** sizeof(struct sockaddr_in6). */
export const SOCKADDR_IN6_LEN = 28;

const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/**
 * A validated UDP destination or source: `{ address, port, family }`. Create
 * with {@link UdpEndpoint.of} (or `UdpSocket.endpoint`); sources of received
 * datagrams are endpoints too, interned so identical sources are the same
 * object. Immutable; reuse it for every send to that peer.
 */
export class UdpEndpoint {
  /** Canonical text form: dotted quad, or RFC 5952 IPv6 (`2001:2::1`); scope ids as `%<index>`. */
  readonly address: string;
  /** UDP port, 0..65535 (0 only as a local address before binding). */
  readonly port: number;
  /** 4 or 6; IPv4-mapped IPv6 addresses are family 4. */
  readonly family: 4 | 6;
  /** @internal `struct sockaddr_in` or `sockaddr_in6` bytes, as the kernel takes them. */
  readonly sockaddr: Uint8Array;
  /** @internal Equal for equal endpoints: the interning and comparison key. */
  readonly key: string;
  /** @internal `[sockaddr]`, the address list of a one-destination send (no array per send). */
  readonly sockaddrs: readonly Uint8Array[];

  /** @internal use {@link UdpEndpoint.of} or {@link parseSockaddr}. */
  constructor(address: string, port: number, family: 4 | 6, sockaddr: Uint8Array, key: string) {
    this.address = address;
    this.port = port;
    this.family = family;
    this.sockaddr = sockaddr;
    this.key = key;
    this.sockaddrs = Object.freeze([sockaddr]);
    Object.freeze(this);
  }

  /**
   * Validates `address` (IPv4 dotted quad or IPv6 text, optionally `%scopeid`
   * as a number) and `port` (integer 0..65535) once.
   * @throws VectunError `ERR_UDP_INVALID_ENDPOINT`.
   */
  static of(address: string, port: number): UdpEndpoint {
    if (typeof address !== 'string') throw badEndpoint(`address must be a string, got ${typeof address}`);
    if (typeof port !== 'number' || !Number.isInteger(port) || port < 0 || port > 65535) {
      throw badEndpoint(`port must be an integer in 0..65535, got ${String(port)}`);
    }
    const v4 = parseIPv4(address);
    if (v4 !== undefined) return endpointV4(v4, port);
    const percent = address.indexOf('%');
    const text = percent < 0 ? address : address.slice(0, percent);
    let scope = 0;
    if (percent >= 0) {
      const s = address.slice(percent + 1);
      if (!/^\d{1,10}$/.test(s) || Number(s) > 0xffffffff) throw badEndpoint(`scope id of ${address} must be an interface index`);
      scope = Number(s);
    }
    const v6 = parseIPv6(text);
    if (v6 === undefined) throw badEndpoint(`${JSON.stringify(address)} is not an IPv4 or IPv6 address`);
    if (scope === 0 && isV4Mapped(v6)) return endpointV4(v6.subarray(12, 16), port);
    return endpointV6(v6, port, scope);
  }

  /** `198.18.0.1:4000` or `[2001:2::1]:4000`. */
  toString(): string {
    return this.family === 6 ? `[${this.address}]:${this.port}` : `${this.address}:${this.port}`;
  }
}

function badEndpoint(message: string): VectunError {
  return new VectunError('ERR_UDP_INVALID_ENDPOINT', message);
}

function writeFamily(out: Uint8Array, family: number): void {
  out[LITTLE_ENDIAN ? 0 : 1] = family;
  out[LITTLE_ENDIAN ? 1 : 0] = 0;
}

function readFamily(b: Uint8Array, off: number): number {
  return LITTLE_ENDIAN ? b[off]! | (b[off + 1]! << 8) : (b[off]! << 8) | b[off + 1]!;
}

function endpointV4(addr: Uint8Array, port: number): UdpEndpoint {
  const sa = new Uint8Array(SOCKADDR_IN_LEN);
  writeFamily(sa, AF_INET);
  sa[2] = port >>> 8;
  sa[3] = port & 0xff;
  sa.set(addr.subarray(0, 4), 4);
  const address = formatIPv4(addr);
  return new UdpEndpoint(address, port, 4, sa, `${address}:${port}`);
}

function endpointV6(addr: Uint8Array, port: number, scope: number): UdpEndpoint {
  const sa = new Uint8Array(SOCKADDR_IN6_LEN);
  writeFamily(sa, AF_INET6);
  sa[2] = port >>> 8;
  sa[3] = port & 0xff;
  // bytes 4..7: sin6_flowinfo 0
  sa.set(addr.subarray(0, 16), 8);
  // sin6_scope_id, host byte order
  new DataView(sa.buffer).setUint32(24, scope, LITTLE_ENDIAN);
  const address = formatIPv6(addr) + (scope === 0 ? '' : `%${scope}`);
  return new UdpEndpoint(address, port, 6, sa, `[${address}]:${port}`);
}

function isV4Mapped(a: Uint8Array): boolean {
  for (let i = 0; i < 10; i++) if (a[i] !== 0) return false;
  return a[10] === 0xff && a[11] === 0xff;
}

/**
 * The endpoint in `bytes[offset..offset + length)`, a `sockaddr_in` or
 * `sockaddr_in6` as recvmmsg/getsockname fill it (IPv4-mapped shown as IPv4),
 * or undefined for another family or a short length.
 */
export function parseSockaddr(bytes: Uint8Array, offset: number, length: number): UdpEndpoint | undefined {
  const family = readFamily(bytes, offset);
  const port = (bytes[offset + 2]! << 8) | bytes[offset + 3]!;
  if (family === AF_INET && length >= SOCKADDR_IN_LEN) return endpointV4(bytes.subarray(offset + 4, offset + 8), port);
  if (family === AF_INET6 && length >= SOCKADDR_IN6_LEN) {
    const addr = bytes.subarray(offset + 8, offset + 24);
    const scope = new DataView(bytes.buffer, bytes.byteOffset + offset + 24, 4).getUint32(0, LITTLE_ENDIAN);
    if (scope === 0 && isV4Mapped(addr)) return endpointV4(addr.subarray(12, 16), port);
    return endpointV6(addr, port, scope);
  }
  return undefined;
}

/**
 * A `sockaddr_in` as the IPv4-mapped `sockaddr_in6` an AF_INET6 socket takes
 * (ipv6(7)): bind and connect on a dual-stack socket; native/udp.c maps sends
 * the same way.
 */
export function mappedSockaddr(sin: Uint8Array): Uint8Array {
  const out = new Uint8Array(SOCKADDR_IN6_LEN);
  writeFamily(out, AF_INET6);
  out[2] = sin[2]!;
  out[3] = sin[3]!;
  out[18] = 0xff;
  out[19] = 0xff;
  out.set(sin.subarray(4, 8), 20);
  return out;
}

/** Bound on remembered sources; past it the table starts over (a flood of spoofed sources cannot grow memory). */
const INTERN_LIMIT = 4096;

/**
 * Turns received `sockaddr` bytes into endpoints, returning the same object
 * for the same source (so callers can compare sources by identity). One per
 * socket.
 */
export class SourceInterner {
  readonly #v4 = new Map<number, UdpEndpoint>();
  readonly #v6 = new Map<string, UdpEndpoint>();

  /** The endpoint of the sockaddr at `bytes[offset..]` (`length` bytes), or undefined for an unknown family. */
  intern(bytes: Uint8Array, offset: number, length: number): UdpEndpoint | undefined {
    const family = readFamily(bytes, offset);
    let mapped = false;
    if (family === AF_INET6 && length >= SOCKADDR_IN6_LEN) {
      let zero = true;
      for (let i = offset + 8; i < offset + 18; i++) if (bytes[i] !== 0) zero = false;
      const scopeZero = (bytes[offset + 24]! | bytes[offset + 25]! | bytes[offset + 26]! | bytes[offset + 27]!) === 0;
      mapped = zero && scopeZero && bytes[offset + 18] === 0xff && bytes[offset + 19] === 0xff;
    }
    if ((family === AF_INET && length >= SOCKADDR_IN_LEN) || mapped) {
      const a = mapped ? offset + 20 : offset + 4;
      // address (32 bits) * 65536 + port: exact in a double (48 bits).
      const addr = ((bytes[a]! << 24) | (bytes[a + 1]! << 16) | (bytes[a + 2]! << 8) | bytes[a + 3]!) >>> 0;
      const key = addr * 65536 + ((bytes[offset + 2]! << 8) | bytes[offset + 3]!);
      let e = this.#v4.get(key);
      if (e === undefined) {
        e = parseSockaddr(bytes, offset, length);
        if (e === undefined) return undefined;
        if (this.#v4.size >= INTERN_LIMIT) this.#v4.clear();
        this.#v4.set(key, e);
      }
      return e;
    }
    if (family !== AF_INET6 || length < SOCKADDR_IN6_LEN) return undefined;
    let key = '';
    for (let i = offset + 2; i < offset + 4; i++) key += String.fromCharCode(bytes[i]!);
    for (let i = offset + 8; i < offset + 28; i += 2) key += String.fromCharCode((bytes[i]! << 8) | bytes[i + 1]!);
    let e = this.#v6.get(key);
    if (e === undefined) {
      e = parseSockaddr(bytes, offset, length);
      if (e === undefined) return undefined;
      if (this.#v6.size >= INTERN_LIMIT) this.#v6.clear();
      this.#v6.set(key, e);
    }
    return e;
  }
}
