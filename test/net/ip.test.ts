/**
 * The shared IP text module (pure): strict dotted quads, RFC 4291 section
 * 2.2 IPv6 text (`::` compression, embedded IPv4 tail), RFC 5952 section 4
 * canonical output, and the RFC 5952 section 5 dotted form for IPv4-mapped.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { formatIPv4, formatIPv6, parseIPv4, parseIPv6 } from '../../src/net/ip.js';

/** 16 bytes from eight 16-bit groups. */
function v6(...groups: number[]): number[] {
  assert.equal(groups.length, 8);
  return groups.flatMap((g) => [g >> 8, g & 0xff]);
}

/** The bytes of an address spelled out in eight hex groups: the reference for the parser. */
function spelledOut(text: string): Uint8Array {
  return Uint8Array.from(v6(...text.split(':').map((g) => parseInt(g, 16))));
}

test('parseIPv4: strict dotted quads', () => {
  const ok: Array<[string, number[]]> = [
    ['0.0.0.0', [0, 0, 0, 0]],
    ['198.18.0.1', [198, 18, 0, 1]],
    ['255.255.255.255', [255, 255, 255, 255]],
    ['10.0.100.9', [10, 0, 100, 9]],
  ];
  for (const [text, bytes] of ok) assert.deepEqual(parseIPv4(text), Uint8Array.from(bytes), text);
  const bad = [
    '', '1.2.3', '1.2.3.4.5', '1..2.3', '1.2.3.', '.1.2.3', '256.0.0.1', '1.2.3.1000',
    '01.2.3.4', '1.2.3.04', '00.0.0.0', '1.2.3.-1', '1.2.3.+1', ' 1.2.3.4', '1.2.3.4 ', '0x1.2.3.4',
    '1.2.3.4%1', '1.2.3.٣', '127.1', '2130706433', '::1',
  ];
  for (const text of bad) assert.equal(parseIPv4(text), undefined, text);
});

test('parseIPv6: RFC 4291 section 2.2 forms', () => {
  // Each address spelled out in eight groups, with other spellings of it.
  const spellings: Record<string, string[]> = {
    '0:0:0:0:0:0:0:0': ['::', '0::', '::0', '0:0:0::0:0:0', '0000:0000:0000:0000:0000:0000:0000:0000'],
    '0:0:0:0:0:0:0:1': ['::1', '0::1', '::0.0.0.1'],
    '1:0:0:0:0:0:0:0': ['1::'],
    '2001:db8:0:0:0:0:0:a': ['2001:db8::a', '2001:DB8::A', '2001:0db8:0000::000a'],
    '2001:2:0:0:0:0:0:1': ['2001:0002:0000:0000:0000:0000:0000:0001', '2001:2::0:1'],
    '1:2:3:4:5:6:7:0': ['1:2:3:4:5:6:7::'],
    '0:2:3:4:5:6:7:8': ['::2:3:4:5:6:7:8'],
    '1:2:3:0:0:6:7:8': ['1:2:3::6:7:8', '1:2:3:0::6:7:8', '1:2:3::0:6:7:8'],
    '0:0:0:0:0:ffff:c612:1': ['::ffff:198.18.0.1', '::FFFF:c612:0001', '0:0:0:0:0:ffff:198.18.0.1'],
    '0:0:0:0:0:0:c612:1': ['::198.18.0.1'],
    '1:2:3:4:5:6:c612:1': ['1:2:3:4:5:6:198.18.0.1'],
    '1:0:0:0:0:6:c612:1': ['1::6:198.18.0.1'],
    'ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff': ['ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255', 'FFFF:ffff:ffff:ffff:ffff:ffff:ffff:ffff'],
  };
  for (const [full, others] of Object.entries(spellings)) {
    for (const text of [full, ...others]) assert.deepEqual(parseIPv6(text), spelledOut(full), text);
  }
  const bad = [
    '', ':', ':::', '1', '1:2:3:4:5:6:7', '1:2:3:4:5:6:7:8:9', '1:2:3:4:5:6:7:8::', '::1:2:3:4:5:6:7:8',
    '1::2::3', '2001:2:::1', ':1::', '1::1:', ':1:2:3:4:5:6:7:8', '1:2:3:4:5:6:7:8:',
    '12345::', 'g::1', '1:2:3:4:5:6:7:-1', ' ::1', '::1 ',
    // an embedded IPv4 part only as the last field, and strict
    '198.18.0.1', '198.18.0.1::', '198.18.0.1::1', '::198.18.0.1:1', '1:2:3:4:5:6:7:198.18.0.1',
    '::ffff:198.18.0.01', '::ffff:198.18.0', '::ffff:198.18.0.256',
    // zones are the caller's business
    'fe80::1%1', 'fe80::1%eth0', '::1%',
  ];
  for (const text of bad) assert.equal(parseIPv6(text), undefined, text);
});

test('formatIPv6: RFC 5952 section 4 canonical text', () => {
  // Canonical text, with other spellings of the same address.
  const canonical: Record<string, string[]> = {
    // 4.1 no leading zeros; 4.2.1 the longest run as `::`, and as short as possible
    '2001:db8::1': ['2001:0db8:0000:0000:0000:0000:0000:0001', '2001:db8:0::0:1'],
    // 4.3 lower case
    '2001:db8:abcd:ef::a': ['2001:DB8:ABCD:EF:0:0:0:A'],
    // 4.2.2 a single 0 group is not compressed
    '2001:db8:0:1:1:1:1:1': ['2001:db8::1:1:1:1:1', '2001:0db8:0000:1:1:1:1:1'],
    '0:1:2:3:4:5:6:7': ['::1:2:3:4:5:6:7'],
    // 4.2.3 the longest run; the first of equal runs
    '2001:0:0:1::1': ['2001:0:0:1:0:0:0:1', '2001::1:0:0:0:1'],
    '2001:db8::1:0:0:1': ['2001:db8:0:0:1::1', '2001:db8:0:0:1:0:0:1'],
    '1:0:1:0:1:0:1:0': ['1:0:1:0:1:0:1::'],
    // runs at the ends, all zero, no zeros
    '::': ['0:0:0:0:0:0:0:0'],
    '::1': ['0:0:0:0:0:0:0:1'],
    '1::': ['1:0:0:0:0:0:0:0', '1:0::'],
    'ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff': ['FFFF:FFFF:FFFF:FFFF:FFFF:FFFF:255.255.255.255'],
    // by default IPv4-mapped and IPv4-compatible tails are hex
    '::ffff:c612:1': ['::ffff:198.18.0.1'],
    '::c612:1': ['::198.18.0.1'],
  };
  for (const [text, others] of Object.entries(canonical)) {
    for (const other of [text, ...others]) assert.equal(formatIPv6(parseIPv6(other)!), text, other);
  }
});

test('formatIPv6 mappedAsDottedQuad: RFC 5952 section 5 for ::ffff:0:0/96 only', () => {
  const dotted = { mappedAsDottedQuad: true };
  assert.equal(formatIPv6(Uint8Array.from(v6(0, 0, 0, 0, 0, 0xffff, 0xc612, 1)), dotted), '::ffff:198.18.0.1');
  assert.equal(formatIPv6(Uint8Array.from(v6(0, 0, 0, 0, 0, 0xffff, 0, 0)), dotted), '::ffff:0.0.0.0');
  assert.equal(formatIPv6(Uint8Array.from(v6(0, 0, 0, 0, 0, 0, 0xc612, 1)), dotted), '::c612:1', 'not mapped');
  assert.equal(formatIPv6(Uint8Array.from(v6(0, 0, 0, 0, 1, 0xffff, 0xc612, 1)), dotted), '::1:ffff:c612:1', 'not mapped');
  assert.equal(formatIPv6(Uint8Array.from(v6(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1)), dotted), '2001:db8::1');
});

test('formatIPv4: dotted quad of the first four bytes', () => {
  assert.equal(formatIPv4(Uint8Array.from([198, 18, 0, 1])), '198.18.0.1');
  assert.equal(formatIPv4(Uint8Array.from([0, 0, 0, 0])), '0.0.0.0');
  assert.equal(formatIPv4(Uint8Array.from([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 1, 2, 3, 4]).subarray(12)), '1.2.3.4');
});

test('property: parse(format(bytes)) is the identity, in both IPv6 forms and for IPv4', () => {
  fc.assert(
    fc.property(fc.uint8Array({ minLength: 16, maxLength: 16 }), fc.boolean(), (bytes, dotted) => {
      if (dotted) bytes.set([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff]);
      const text = formatIPv6(bytes, { mappedAsDottedQuad: dotted });
      assert.equal(text, text.toLowerCase());
      assert.deepEqual(parseIPv6(text), bytes);
    }),
    { numRuns: 500 },
  );
  fc.assert(
    fc.property(fc.uint8Array({ minLength: 4, maxLength: 4 }), (bytes) => {
      assert.deepEqual(parseIPv4(formatIPv4(bytes)), bytes);
    }),
    { numRuns: 300 },
  );
});
