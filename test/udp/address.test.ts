/**
 * Endpoints and sockaddr bytes (pure): ip(7) sockaddr_in / ipv6(7)
 * sockaddr_in6 layout, RFC 4291 section 2.2 text forms, RFC 5952 canonical
 * output, RFC 4291 section 2.5.5.2 IPv4-mapped addresses shown as IPv4, and
 * interning of received sources.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { formatIPv6, parseIPv4, parseIPv6 } from '../../src/net/ip.js';
import { SourceInterner, UdpEndpoint, mappedSockaddr, parseSockaddr } from '../../src/udp/address.js';
import { isCode } from '../error-code.js';

const LE = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;


test('ip(7): an IPv4 endpoint is a 16-byte sockaddr_in, family in host order, port and address in network order', () => {
  const e = UdpEndpoint.of('198.18.0.1', 0x1234);
  assert.equal(e.family, 4);
  assert.equal(e.address, '198.18.0.1');
  assert.equal(e.port, 0x1234);
  assert.deepEqual([...e.sockaddr], [...(LE ? [2, 0] : [0, 2]), 0x12, 0x34, 198, 18, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0]);
  assert.equal(e.toString(), '198.18.0.1:4660');
  assert.ok(Object.isFrozen(e));
});

test('ipv6(7): an IPv6 endpoint is a 28-byte sockaddr_in6 with flowinfo 0 and the scope id', () => {
  const e = UdpEndpoint.of('2001:2::1', 51820);
  assert.equal(e.family, 6);
  assert.equal(e.sockaddr.length, 28);
  assert.deepEqual([...e.sockaddr.subarray(0, 2)], LE ? [10, 0] : [0, 10]);
  assert.deepEqual([...e.sockaddr.subarray(2, 4)], [51820 >> 8, 51820 & 0xff]);
  assert.deepEqual([...e.sockaddr.subarray(4, 8)], [0, 0, 0, 0]);
  assert.deepEqual([...e.sockaddr.subarray(8, 24)], [0x20, 0x01, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
  assert.equal(e.toString(), '[2001:2::1]:51820');
  const scoped = UdpEndpoint.of('fe80::1%3', 1);
  assert.equal(scoped.address, 'fe80::1%3');
  assert.equal(new DataView(scoped.sockaddr.buffer).getUint32(24, LE), 3);
});

test('RFC 5952: canonical text (lower case, longest zero run compressed, first on a tie, no single-group ::)', () => {
  const cases: [string, string][] = [
    ['2001:0002:0000:0000:0000:0000:0000:0001', '2001:2::1'],
    ['2001:DB8::A', '2001:db8::a'],
    ['2001:db8:0:1:1:1:1:1', '2001:db8:0:1:1:1:1:1'],
    ['2001:0:0:1:0:0:0:1', '2001:0:0:1::1'],
    ['2001:db8:0:0:1:0:0:1', '2001:db8::1:0:0:1'],
    ['::', '::'],
    ['::1', '::1'],
    ['1::', '1::'],
    ['::198.18.0.1', '::c612:1'],
  ];
  for (const [input, canonical] of cases) assert.equal(UdpEndpoint.of(input, 1).address, canonical, input);
});

test('RFC 4291 2.5.5.2: IPv4-mapped IPv6 text and sockaddrs become IPv4 endpoints', () => {
  const e = UdpEndpoint.of('::ffff:198.18.0.7', 9);
  assert.equal(e.family, 4);
  assert.equal(e.address, '198.18.0.7');
  assert.equal(e.sockaddr.length, 16);
  const sin6 = new Uint8Array(28);
  sin6[LE ? 0 : 1] = 10;
  sin6[3] = 9;
  sin6.set([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 198, 18, 0, 7], 8);
  const parsed = parseSockaddr(sin6, 0, 28)!;
  assert.equal(parsed.family, 4);
  assert.equal(parsed.key, e.key);
  assert.deepEqual(mappedSockaddr(UdpEndpoint.of('198.18.0.7', 9).sockaddr), sin6, 'and mappedSockaddr builds exactly those bytes');
});

test('invalid addresses and ports are ERR_UDP_INVALID_ENDPOINT', () => {
  for (const bad of ['', '198.18.0', '198.18.0.256', '198.018.0.1', '1.2.3.4.5', '2001:2:::1', '2001::2::1', '1:2:3:4:5:6:7:8:9', 'g::1', '::1%x', 'localhost', '1:2:3:4:5:6:7::8:9']) {
    assert.throws(() => UdpEndpoint.of(bad, 1), isCode('ERR_UDP_INVALID_ENDPOINT'), bad);
  }
  for (const port of [-1, 65536, 1.5, Number.NaN]) assert.throws(() => UdpEndpoint.of('198.18.0.1', port), isCode('ERR_UDP_INVALID_ENDPOINT'));
  assert.throws(() => UdpEndpoint.of(1 as unknown as string, 1), isCode('ERR_UDP_INVALID_ENDPOINT'));
  assert.throws(() => UdpEndpoint.of('198.18.0.1', '80' as unknown as number), isCode('ERR_UDP_INVALID_ENDPOINT'));
});

test('property: parse(format(bytes)) is the identity for IPv6, and sockaddr round-trips for both families', () => {
  fc.assert(
    fc.property(fc.uint8Array({ minLength: 16, maxLength: 16 }), fc.integer({ min: 0, max: 65535 }), (bytes, port) => {
      assert.deepEqual(parseIPv6(formatIPv6(bytes)), bytes);
      const e = UdpEndpoint.of(formatIPv6(bytes), port);
      const back = parseSockaddr(e.sockaddr, 0, e.sockaddr.length)!;
      assert.equal(back.key, e.key);
      assert.equal(back.port, port);
    }),
    { numRuns: 500 },
  );
  fc.assert(
    fc.property(fc.uint8Array({ minLength: 4, maxLength: 4 }), fc.integer({ min: 0, max: 65535 }), (bytes, port) => {
      const text = [...bytes].join('.');
      assert.deepEqual(parseIPv4(text), bytes);
      const e = UdpEndpoint.of(text, port);
      assert.equal(parseSockaddr(e.sockaddr, 0, 16)!.key, e.key);
    }),
    { numRuns: 300 },
  );
});

test('SourceInterner: the same source is the same object; v4 and v4-mapped are one source; other families are refused', () => {
  const interner = new SourceInterner();
  const a = UdpEndpoint.of('198.18.0.1', 1000).sockaddr;
  const b = UdpEndpoint.of('198.18.0.1', 1001).sockaddr;
  const v6 = UdpEndpoint.of('2001:2::5', 1000).sockaddr;
  const names = new Uint8Array(28 * 5);
  names.set(a, 0);
  names.set(b, 28);
  names.set(v6, 56);
  names.set(v6, 84);
  const mappedA = new Uint8Array(28);
  mappedA[LE ? 0 : 1] = 10;
  mappedA.set(a.subarray(2, 4), 2);
  mappedA.set([0xff, 0xff], 18);
  mappedA.set(a.subarray(4, 8), 20);
  names.set(mappedA, 112);
  const e0 = interner.intern(names, 0, 28)!;
  const e1 = interner.intern(names, 28, 28)!;
  const e2 = interner.intern(names, 56, 28)!;
  const e3 = interner.intern(names, 84, 28)!;
  const e4 = interner.intern(names, 112, 28)!;
  assert.notEqual(e0, e1);
  assert.equal(e2, e3);
  assert.equal(e0, e4, 'IPv4-mapped source is the same endpoint as the plain IPv4 one');
  assert.equal(e4.family, 4);
  assert.equal(e2.address, '2001:2::5');
  assert.equal(interner.intern(new Uint8Array(28), 0, 28), undefined, 'AF_UNSPEC');
});
