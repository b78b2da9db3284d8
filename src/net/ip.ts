/**
 * IP address text: the one IPv4/IPv6 parser and RFC 5952 formatter that
 * device/rtnetlink.ts, udp/address.ts, wg/allowed-ips.ts and wg/uapi.ts
 * share.
 *
 * Pure (no Node APIs, no I/O). The parsers take the strict common core of
 * Go's `netip.ParseAddr` and the UDP endpoint rules: a dotted quad without
 * leading zeros or shorthand; RFC 4291 section 2.2 IPv6 with at most one
 * `::` (standing for at least one zero group) and an optional dotted-quad
 * tail. Zones (`%...`) are not parsed here: each caller has its own rule
 * for them (a numeric scope id for UDP, any non-empty text for the UAPI),
 * so callers split the zone off first.
 * @module
 */

/** Four bytes of a strict dotted quad (no leading zeros, no shorthand), or undefined. */
export function parseIPv4(text: string): Uint8Array | undefined {
  const parts = text.split('.');
  if (parts.length !== 4) return undefined;
  const out = new Uint8Array(4);
  for (let i = 0; i < 4; i++) {
    const p = parts[i]!;
    if (!/^(0|[1-9][0-9]{0,2})$/.test(p) || Number(p) > 255) return undefined;
    out[i] = Number(p);
  }
  return out;
}

/**
 * Sixteen bytes of an RFC 4291 section 2.2 text address (hex groups in
 * either case, one `::` at most, a dotted-quad tail allowed only as the last
 * field), or undefined. No zone: split `%...` off first.
 */
export function parseIPv6(text: string): Uint8Array | undefined {
  // 45 = six groups and a dotted quad, the longest valid text: a cheap early reject.
  if (text.length < 2 || text.length > 45) return undefined;
  const halves = text.split('::');
  if (halves.length > 2) return undefined;
  const groups = (s: string, mayEndInIPv4: boolean): number[] | undefined => {
    if (s === '') return [];
    const out: number[] = [];
    const parts = s.split(':');
    for (let i = 0; i < parts.length; i++) {
      const p = parts[i]!;
      if (mayEndInIPv4 && i === parts.length - 1 && p.includes('.')) {
        const v4 = parseIPv4(p);
        if (v4 === undefined) return undefined;
        out.push((v4[0]! << 8) | v4[1]!, (v4[2]! << 8) | v4[3]!);
      } else {
        if (!/^[0-9a-fA-F]{1,4}$/.test(p)) return undefined;
        out.push(parseInt(p, 16));
      }
    }
    return out;
  };
  const compressed = halves.length === 2;
  // An embedded IPv4 part is only allowed at the very end, so not before a `::`.
  const head = groups(halves[0]!, !compressed);
  const tail = compressed ? groups(halves[1]!, true) : [];
  if (head === undefined || tail === undefined) return undefined;
  const missing = 8 - head.length - tail.length;
  // Without `::` all eight groups are spelled out; with it, `::` stands for one or more.
  if (compressed ? missing < 1 : missing !== 0) return undefined;
  const all = [...head, ...new Array<number>(compressed ? missing : 0).fill(0), ...tail];
  const out = new Uint8Array(16);
  for (let i = 0; i < 8; i++) {
    out[2 * i] = all[i]! >>> 8;
    out[2 * i + 1] = all[i]! & 0xff;
  }
  return out;
}

/** Dotted quad of the first four bytes of `a`. */
export function formatIPv4(a: Uint8Array): string {
  return `${a[0]}.${a[1]}.${a[2]}.${a[3]}`;
}

/** Options of {@link formatIPv6}. */
export interface FormatIPv6Options {
  /**
   * Write an IPv4-mapped address (`::ffff:0:0/96`) with its IPv4 tail as a
   * dotted quad (`::ffff:198.18.0.1`), as RFC 5952 section 5 recommends and
   * Go's `netip.Addr.String` does. Off: plain hex groups (`::ffff:c612:1`).
   */
  mappedAsDottedQuad?: boolean;
}

/**
 * RFC 5952 section 4 text of 16 address bytes: lower-case hex without
 * leading zeros, the longest run of two or more zero groups as `::` (the
 * first on a tie), a single zero group written as `0`.
 */
export function formatIPv6(a: Uint8Array, options: FormatIPv6Options = {}): string {
  const g: number[] = [];
  for (let i = 0; i < 8; i++) g.push((a[2 * i]! << 8) | a[2 * i + 1]!);
  if (options.mappedAsDottedQuad === true && g.slice(0, 5).every((x) => x === 0) && g[5] === 0xffff) {
    return `::ffff:${formatIPv4(a.subarray(12, 16))}`;
  }
  let bestStart = -1;
  let bestLen = 1;
  for (let i = 0; i < 8; ) {
    if (g[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && g[j] === 0) j++;
    if (j - i > bestLen) {
      bestStart = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = (xs: number[]): string => xs.map((x) => x.toString(16)).join(':');
  if (bestStart < 0) return hex(g);
  return `${hex(g.slice(0, bestStart))}::${hex(g.slice(bestStart + bestLen))}`;
}
