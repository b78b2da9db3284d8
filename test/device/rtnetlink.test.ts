/**
 * rtnetlink message building and parsing (src/device/rtnetlink.ts), checked
 * against the layouts of linux/netlink.h, rtnetlink.h, if_link.h, if_addr.h.
 * The kernel's acceptance of these messages is checked in test/e2e/tun.test.ts.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  RTM_NEWLINK, addAddressMessage, addRouteMessage, getLinkMessage, parseAttrs, parseCidr, parseLink, parseMessages,
  setMtuMessage, setUpMessage,
} from '../../src/device/rtnetlink.js';
import { VectunError } from '../../src/errors.js';

const dv = (m: Uint8Array): DataView => new DataView(m.buffer, m.byteOffset, m.byteLength);

test('parseCidr: IPv4, IPv6 with ::, embedded IPv4 tail, default prefix', () => {
  assert.deepEqual(parseCidr('198.18.0.1/24', 'cidr'), { family: 4, bytes: Uint8Array.from([198, 18, 0, 1]), prefix: 24 });
  assert.deepEqual(parseCidr('198.18.0.1', 'cidr').prefix, 32);
  const v6 = parseCidr('2001:2::1/64', 'cidr');
  assert.equal(v6.family, 6);
  assert.equal(v6.prefix, 64);
  assert.deepEqual(Array.from(v6.bytes), [0x20, 0x01, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
  assert.deepEqual(Array.from(parseCidr('::/0', 'cidr').bytes), new Array(16).fill(0));
  assert.deepEqual(Array.from(parseCidr('::ffff:198.18.0.1', 'cidr').bytes.subarray(10)), [0xff, 0xff, 198, 18, 0, 1]);
  assert.deepEqual(Array.from(parseCidr('2001:2:0:1:2:3:4:5/128', 'cidr').bytes.subarray(8)), [0, 2, 0, 3, 0, 4, 0, 5]);
});

test('parseCidr rejects bad input naming the option', () => {
  // Zones were once accepted and silently dropped (fe80::1%eth0 -> fe80::1); now they are refused.
  for (const bad of ['198.18.0.1/33', '2001:2::1/129', 'nonsense', '198.18.0.1/2x', '198.18.0.1/', '1.2.3/8', '2001:2::1%eth0/64', 'fe80::1%1', '198.018.0.1/24', '2001:2::1::2/64', '1:2:3:4:5:6:7:8:9/64']) {
    assert.throws(() => parseCidr(bad, 'options.address'), (err: unknown) => {
      assert.ok(err instanceof VectunError);
      assert.equal(err.code, 'ERR_INVALID_ARG');
      assert.match(err.message, /options\.address/);
      return true;
    }, bad);
  }
});

test('setMtuMessage: nlmsghdr, ifinfomsg, IFLA_MTU; request and ack flags', () => {
  const m = setMtuMessage(42, 7, 1400);
  const v = dv(m);
  assert.equal(v.getUint32(0, true), m.length);
  assert.equal(m.length, 16 + 16 + 8);
  assert.equal(v.getUint16(4, true), RTM_NEWLINK);
  assert.equal(v.getUint16(6, true), 0x1 | 0x4);
  assert.equal(v.getUint32(8, true), 42);
  assert.equal(v.getInt32(16 + 4, true), 7);
  assert.equal(v.getUint16(32, true), 8); // rta_len
  assert.equal(v.getUint16(34, true), 4); // IFLA_MTU
  assert.equal(v.getUint32(36, true), 1400);
});

test('setUpMessage changes only IFF_UP', () => {
  const up = dv(setUpMessage(1, 7, true));
  const down = dv(setUpMessage(2, 7, false));
  assert.deepEqual([up.getUint32(24, true), up.getUint32(28, true)], [1, 1]);
  assert.deepEqual([down.getUint32(24, true), down.getUint32(28, true)], [0, 1]);
  assert.equal(dv(getLinkMessage(3, 7)).getUint16(4, true), 18);
});

test('addAddressMessage: ifaddrmsg and IFA_LOCAL + IFA_ADDRESS for IPv4, IFA_ADDRESS for IPv6; create|excl', () => {
  const m4 = addAddressMessage(5, 9, parseCidr('198.18.0.1/24', 'c'));
  const v4 = dv(m4);
  assert.equal(v4.getUint16(4, true), 20);
  assert.equal(v4.getUint16(6, true), 0x1 | 0x4 | 0x400 | 0x200);
  assert.deepEqual([m4[16], m4[17]], [2, 24]); // AF_INET, prefix
  assert.equal(v4.getUint32(20, true), 9);
  const attrs4 = parseAttrs(m4.subarray(16), 8);
  assert.deepEqual(Array.from(attrs4.get(2)!), [198, 18, 0, 1]);
  assert.deepEqual(Array.from(attrs4.get(1)!), [198, 18, 0, 1]);
  const m6 = addAddressMessage(6, 9, parseCidr('2001:2::1/64', 'c'));
  assert.deepEqual([m6[16], m6[17]], [10, 64]);
  const attrs6 = parseAttrs(m6.subarray(16), 8);
  assert.equal(attrs6.get(1)!.length, 16);
  assert.equal(attrs6.has(2), false);
});

test('addRouteMessage: main table, on-link, destination with host bits cleared, RTA_OIF', () => {
  const m = addRouteMessage(8, 9, parseCidr('198.18.1.77/24', 'c'));
  const v = dv(m);
  assert.equal(v.getUint16(4, true), 24);
  assert.deepEqual(Array.from(m.subarray(16, 24)), [2, 24, 0, 0, 254, 3, 253, 1]);
  const attrs = parseAttrs(m.subarray(16), 12);
  assert.deepEqual(Array.from(attrs.get(1)!), [198, 18, 1, 0]);
  assert.equal(dv(attrs.get(4)!).getUint32(0, true), 9);
  const m6 = addRouteMessage(9, 9, parseCidr('2001:2:0:1::5/64', 'c'));
  assert.deepEqual(Array.from(parseAttrs(m6.subarray(16), 12).get(1)!), [0x20, 1, 0, 2, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0]);
  assert.equal(m6[16 + 6], 0, 'IPv6 routes use universe scope');
});

test('parseMessages splits a datagram and stops at a malformed length; parseLink reads index, flags, MTU, name', () => {
  const a = setMtuMessage(1, 3, 9000);
  const b = new Uint8Array(16 + 16 + 8 + 12);
  const v = dv(b);
  v.setUint32(0, b.length, true);
  v.setUint16(4, RTM_NEWLINK, true);
  v.setInt32(20, 3, true);
  v.setUint32(24, 1, true);
  v.setUint16(32, 8, true);
  v.setUint16(34, 4, true);
  v.setUint32(36, 1280, true);
  v.setUint16(40, 9, true);
  v.setUint16(42, 3, true); // IFLA_IFNAME
  b.set([0x76, 0x74, 0x30, 0x00, 0], 44);
  const junk = Uint8Array.from([200, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]);
  const all = new Uint8Array(a.length + b.length + junk.length);
  all.set(a);
  all.set(b, a.length);
  all.set(junk, a.length + b.length);
  const msgs = parseMessages(all);
  assert.equal(msgs.length, 2);
  assert.deepEqual(parseLink(msgs[1]!.body), { index: 3, flags: 1, mtu: 1280, name: 'vt0' });
  assert.equal(parseLink(new Uint8Array(4)), undefined);
});
