import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { WgDeviceStatus } from '../../src/wg/config.js';
import {
  UAPI_MAX_LINE_BYTES,
  UapiErrno,
  canonicalPrefix,
  formatEndpoint,
  formatUapiErrno,
  formatUapiGet,
  parseAddrPort,
  parseUapiSet,
} from '../../src/wg/uapi.js';
import { keyToHex } from '../../src/wg/crypto.js';
import { newPeerStatus } from './fake-control.js';

const key = (byte: number): Uint8Array => new Uint8Array(32).fill(byte);
const hex = (byte: number): string => keyToHex(key(byte));
const ZERO_HEX = '0'.repeat(64);

function deviceStatus(overrides: Partial<WgDeviceStatus> = {}): WgDeviceStatus {
  return { privateKey: null, publicKey: null, listenPort: 0, fwmark: 0, peers: [], ...overrides };
}

/** Parses a set body given as text (lines split on '\n'). */
function set(body: string): ReturnType<typeof parseUapiSet> {
  return parseUapiSet(body.split('\n'));
}

function assertError(body: string, errno: number, lineNo: number): void {
  const { error } = set(body);
  assert.ok(error, `expected errno ${errno} for ${JSON.stringify(body)}`);
  assert.equal(error.errno, errno, error.message);
  assert.match(error.message, new RegExp(`^line ${lineNo}: `));
}

// --- get=1 -------------------------------------------------------------------

test('get=1: an empty device prints nothing but its peers (none): no private_key, listen_port or fwmark lines when unset', () => {
  assert.equal(formatUapiGet(deviceStatus()), '');
  assert.equal(formatUapiGet(deviceStatus({ privateKey: key(0) })), '', 'an all-zero key is no key');
});

test('get=1: device keys in wireguard-go order, keys as lowercase hex', () => {
  const text = formatUapiGet(deviceStatus({ privateKey: key(0xab), publicKey: key(0xcd), listenPort: 51820, fwmark: 4294967295 }));
  assert.equal(text, `private_key=${'ab'.repeat(32)}\nlisten_port=51820\nfwmark=4294967295\n`);
  assert.doesNotMatch(text, /cd{8}/, 'the public key is not part of get=1 (wg derives it)');
});

test('get=1: every peer key in order; preshared_key zeros when none; IPv6 endpoint in brackets; masked allowed IPs', () => {
  const text = formatUapiGet(
    deviceStatus({
      listenPort: 1,
      peers: [
        newPeerStatus(key(0x01), {
          presharedKey: key(0xfe),
          endpoint: { address: '198.18.0.1', port: 51820 },
          persistentKeepalive: 25,
          allowedIps: ['198.18.0.0/24', '2001:2:0:1::/64'],
          lastHandshake: { seconds: 1700000000, nanoseconds: 123456789 },
          rxBytes: 2 ** 40,
          txBytes: 7,
        }),
        newPeerStatus(key(0x02), { endpoint: { address: '2001:2::1', port: 1 }, allowedIps: ['198.18.1.9/24'] }),
      ],
    }),
  );
  assert.equal(
    text,
    [
      'listen_port=1',
      `public_key=${hex(0x01)}`,
      `preshared_key=${hex(0xfe)}`,
      'protocol_version=1',
      'endpoint=198.18.0.1:51820',
      'last_handshake_time_sec=1700000000',
      'last_handshake_time_nsec=123456789',
      'tx_bytes=7',
      'rx_bytes=1099511627776',
      'persistent_keepalive_interval=25',
      'allowed_ip=198.18.0.0/24',
      'allowed_ip=2001:2:0:1::/64',
      `public_key=${hex(0x02)}`,
      `preshared_key=${ZERO_HEX}`,
      'protocol_version=1',
      'endpoint=[2001:2::1]:1',
      'last_handshake_time_sec=0',
      'last_handshake_time_nsec=0',
      'tx_bytes=0',
      'rx_bytes=0',
      'persistent_keepalive_interval=0',
      'allowed_ip=198.18.1.0/24',
      '',
    ].join('\n'),
  );
});

test('errno line: 0 for success, negated errno for a failure (as wireguard-go and wg expect), then a blank line', () => {
  assert.equal(formatUapiErrno(0), 'errno=0\n\n');
  assert.equal(formatUapiErrno(22), 'errno=-22\n\n');
  assert.equal(formatUapiErrno(-98), 'errno=-98\n\n');
});

test('endpoint formatting: IPv4 plain, IPv6 bracketed', () => {
  assert.equal(formatEndpoint({ address: '198.18.0.1', port: 0 }), '198.18.0.1:0');
  assert.equal(formatEndpoint({ address: '2001:2::1', port: 65535 }), '[2001:2::1]:65535');
});

// --- set=1: device keys --------------------------------------------------------

test('set=1: empty body is a valid no-op', () => {
  assert.deepEqual(parseUapiSet([]), { update: {}, error: null });
});

test('set=1 private_key: 64 hex digits (either case), clamped (RFC 7748 §5); all zeros removes it', () => {
  const raw = 'FF'.repeat(32);
  const { update, error } = set(`private_key=${raw}`);
  assert.equal(error, null);
  const expected = key(0xff);
  expected[0] = 0xf8;
  expected[31] = 0x7f;
  assert.deepEqual(update.privateKey, expected);
  assert.deepEqual(set(`private_key=${ZERO_HEX}`).update, { privateKey: null });
});

test('set=1 private_key: wrong length, odd length or a non-hex digit is EINVAL, and the message never contains the value', () => {
  const secret = 'a1'.repeat(31) + 'zz';
  for (const value of ['', 'a1'.repeat(31), 'a1'.repeat(33), 'a1'.repeat(31) + 'a', secret, ` ${'a1'.repeat(32)}`]) {
    const { error } = set(`private_key=${value}`);
    assert.equal(error?.errno, UapiErrno.EINVAL, value);
    if (value.length > 8) assert.ok(!error!.message.includes(value.trim().slice(0, 16)), 'no key material in the message');
  }
});

test('set=1 listen_port: 0..65535 decimal (Go ParseUint): sign, space, hex, overflow are EINVAL', () => {
  assert.deepEqual(set('listen_port=51820').update, { listenPort: 51820 });
  assert.deepEqual(set('listen_port=0').update, { listenPort: 0 });
  assert.deepEqual(set('listen_port=065535').update, { listenPort: 65535 });
  for (const v of ['', '65536', '-1', '+1', ' 1', '1 ', '0x10', '1_0', 'abc', '99999999999999999999999']) {
    assertError(`listen_port=${v}`, UapiErrno.EINVAL, 1);
  }
});

test('set=1 fwmark: 32-bit decimal; 0 removes; overflow EINVAL', () => {
  assert.deepEqual(set('fwmark=4294967295').update, { fwmark: 4294967295 });
  assert.deepEqual(set('fwmark=0').update, { fwmark: 0 });
  assertError('fwmark=4294967296', UapiErrno.EINVAL, 1);
  assertError('fwmark=-1', UapiErrno.EINVAL, 1);
});

test('set=1 replace_peers: only "true"', () => {
  assert.deepEqual(set('replace_peers=true').update, { replacePeers: true });
  for (const v of ['false', 'TRUE', '1', '']) assertError(`replace_peers=${v}`, UapiErrno.EINVAL, 1);
});

test('set=1: an unknown device key is EINVAL, a line without "=" is EPROTO, an over-long line is EIO', () => {
  assertError('foo=1', UapiErrno.EINVAL, 1);
  assertError('=1', UapiErrno.EINVAL, 1);
  assertError('allowed_ip=198.18.0.0/24', UapiErrno.EINVAL, 1); // a peer key before any public_key
  assertError('listen_port=1\nprivate_key', UapiErrno.EPROTO, 2);
  assertError(`listen_port=${'1'.repeat(UAPI_MAX_LINE_BYTES)}`, UapiErrno.EIO, 1);
});

test('set=1: an EPROTO message does not quote the line (it may be a key missing its "=")', () => {
  const secret = 'c3'.repeat(32);
  const { error } = set(`private_key${secret}`);
  assert.equal(error?.errno, UapiErrno.EPROTO);
  assert.ok(!error!.message.includes(secret.slice(0, 16)));
});

test('set=1: a trailing \\r is dropped as by Go\'s line scanner', () => {
  assert.deepEqual(set('listen_port=7\r').update, { listenPort: 7 });
});

test('set=1: lines before a failing one are kept (wireguard-go applies line by line), later ones are not read', () => {
  const { update, error } = set(`listen_port=9\nfwmark=x\nreplace_peers=true`);
  assert.equal(error?.errno, UapiErrno.EINVAL);
  assert.match(error!.message, /^line 2: invalid fwmark/);
  assert.deepEqual(update, { listenPort: 9 });
});

// --- set=1: peer keys ----------------------------------------------------------

test('set=1 public_key: starts a peer section; bad hex is EINVAL; device keys after it are invalid peer keys', () => {
  const { update, error } = set(`public_key=${hex(1)}\npublic_key=${hex(2).toUpperCase()}`);
  assert.equal(error, null);
  assert.deepEqual(update.peers, [{ publicKey: key(1) }, { publicKey: key(2) }]);
  assertError(`public_key=${hex(1).slice(2)}`, UapiErrno.EINVAL, 1);
  assertError(`public_key=${hex(1)}\nlisten_port=1`, UapiErrno.EINVAL, 2);
  assertError(`public_key=${hex(1)}\nbogus=1`, UapiErrno.EINVAL, 2);
});

test('set=1: the full peer section maps to a WgPeerUpdate', () => {
  const body = [
    `private_key=${'e0'.repeat(31)}40`,
    'listen_port=51820',
    'fwmark=0',
    'replace_peers=true',
    `public_key=${hex(1)}`,
    'protocol_version=1',
    `preshared_key=${hex(0x77)}`,
    'endpoint=198.18.0.1:51820',
    'persistent_keepalive_interval=25',
    'replace_allowed_ips=true',
    'allowed_ip=198.18.0.7/24',
    'allowed_ip=2001:2:0:1:0:0:0:1/64',
  ].join('\n');
  const { update, error } = set(body);
  assert.equal(error, null);
  assert.deepEqual(update, {
    privateKey: Uint8Array.from([...new Array<number>(31).fill(0xe0), 0x40]),
    listenPort: 51820,
    fwmark: 0,
    replacePeers: true,
    peers: [
      {
        publicKey: key(1),
        presharedKey: key(0x77),
        endpoint: { address: '198.18.0.1', port: 51820 },
        persistentKeepalive: 25,
        replaceAllowedIps: true,
        allowedIps: ['198.18.0.0/24', '2001:2:0:1::/64'],
      },
    ],
  });
});

test('set=1 preshared_key: all zeros clears it (null); bad hex EINVAL without the value in the message', () => {
  assert.deepEqual(set(`public_key=${hex(1)}\npreshared_key=${ZERO_HEX}`).update.peers, [{ publicKey: key(1), presharedKey: null }]);
  const secret = '5a'.repeat(31) + '5';
  const { error } = set(`public_key=${hex(1)}\npreshared_key=${secret}`);
  assert.equal(error?.errno, UapiErrno.EINVAL);
  assert.ok(!error!.message.includes(secret.slice(0, 16)));
});

test('set=1 remove: only "true"; the section becomes a removal and its other lines are validated but ignored', () => {
  const { update, error } = set(`public_key=${hex(1)}\nendpoint=198.18.0.1:1\nremove=true\nallowed_ip=198.18.0.0/24\npersistent_keepalive_interval=5`);
  assert.equal(error, null);
  assert.deepEqual(update.peers, [{ publicKey: key(1), remove: true }]);
  assertError(`public_key=${hex(1)}\nremove=true\nallowed_ip=198.18.0.0/99`, UapiErrno.EINVAL, 3);
  assertError(`public_key=${hex(1)}\nremove=yes`, UapiErrno.EINVAL, 2);
});

test('set=1 update_only: only "true"; sets updateOnly (the device skips a peer it does not have)', () => {
  assert.deepEqual(set(`public_key=${hex(1)}\nupdate_only=true\nallowed_ip=198.18.0.0/24`).update.peers, [
    { publicKey: key(1), updateOnly: true, allowedIps: ['198.18.0.0/24'] },
  ]);
  assertError(`public_key=${hex(1)}\nupdate_only=false`, UapiErrno.EINVAL, 2);
});

test('set=1 replace_allowed_ips: only "true"; drops the allowed IPs this section added before it', () => {
  assert.deepEqual(set(`public_key=${hex(1)}\nallowed_ip=198.18.0.0/24\nreplace_allowed_ips=true\nallowed_ip=198.18.1.0/24`).update.peers, [
    { publicKey: key(1), replaceAllowedIps: true, allowedIps: ['198.18.1.0/24'] },
  ]);
  assert.deepEqual(set(`public_key=${hex(1)}\nreplace_allowed_ips=true`).update.peers, [{ publicKey: key(1), replaceAllowedIps: true, allowedIps: [] }]);
  assertError(`public_key=${hex(1)}\nreplace_allowed_ips=1`, UapiErrno.EINVAL, 2);
});

test('set=1 persistent_keepalive_interval: 16-bit decimal', () => {
  assert.deepEqual(set(`public_key=${hex(1)}\npersistent_keepalive_interval=65535`).update.peers, [{ publicKey: key(1), persistentKeepalive: 65535 }]);
  assert.deepEqual(set(`public_key=${hex(1)}\npersistent_keepalive_interval=0`).update.peers, [{ publicKey: key(1), persistentKeepalive: 0 }]);
  for (const v of ['65536', '-1', '', '2.5']) assertError(`public_key=${hex(1)}\npersistent_keepalive_interval=${v}`, UapiErrno.EINVAL, 2);
});

test('set=1 protocol_version: only "1"', () => {
  assert.equal(set(`public_key=${hex(1)}\nprotocol_version=1`).error, null);
  for (const v of ['0', '2', '01', '']) assertError(`public_key=${hex(1)}\nprotocol_version=${v}`, UapiErrno.EINVAL, 2);
});

test('set=1 endpoint: Go netip.ParseAddrPort rules', () => {
  const ok: Array<[string, { address: string; port: number }]> = [
    ['198.18.0.1:51820', { address: '198.18.0.1', port: 51820 }],
    ['198.18.0.1:0', { address: '198.18.0.1', port: 0 }],
    ['[2001:2::1]:1', { address: '2001:2::1', port: 1 }],
    ['[2001:0002:0000:0000:0000:0000:0000:0001]:1', { address: '2001:2::1', port: 1 }],
    ['[::ffff:198.18.0.1]:5', { address: '::ffff:198.18.0.1', port: 5 }],
    ['[fe80::1%veth0]:7', { address: 'fe80::1%veth0', port: 7 }],
  ];
  for (const [text, endpoint] of ok) {
    assert.deepEqual(parseAddrPort(text), endpoint, text);
    assert.deepEqual(set(`public_key=${hex(1)}\nendpoint=${text}`).update.peers, [{ publicKey: key(1), endpoint }], text);
  }
  const bad = [
    '',
    '198.18.0.1',
    '198.18.0.1:',
    '198.18.0.1:65536',
    '198.18.0.01:1',
    '198.18.0:1',
    '198.18.0.256:1',
    '[198.18.0.1]:1',
    '2001:2::1:1',
    '[2001:2::1]',
    '[2001:2::1]1',
    '[2001:2::1]:1:2',
    '[2001:2::1%]:1',
    'example.com:51820',
    '[1:2:3:4:5:6:7:8:9]:1',
    '[1::2::3]:1',
  ];
  for (const text of bad) {
    assert.equal(parseAddrPort(text), null, text);
    assertError(`public_key=${hex(1)}\nendpoint=${text}`, UapiErrno.EINVAL, 2);
  }
});

test('set=1 allowed_ip: Go netip.ParsePrefix rules, masked and canonical', () => {
  const ok: Array<[string, string]> = [
    ['198.18.0.1/32', '198.18.0.1/32'],
    ['198.18.0.255/23', '198.18.0.0/23'],
    ['0.0.0.0/0', '0.0.0.0/0'],
    ['2001:2:0:1::1/64', '2001:2:0:1::/64'],
    ['2001:0002::/48', '2001:2::/48'],
    ['::/0', '::/0'],
    ['2001:2:0:0:1:0:0:1/128', '2001:2::1:0:0:1/128'],
    ['2001:2:0:1:0:0:1:1/128', '2001:2:0:1::1:1/128'],
    ['::ffff:198.18.0.1/128', '::ffff:198.18.0.1/128'],
    ['2001:2::198.18.0.1/128', '2001:2::c612:1/128'],
    ['2001:DB8::/32', '2001:db8::/32'],
  ];
  for (const [text, canonical] of ok) assert.equal(canonicalPrefix(text), canonical, text);
  const bad = ['198.18.0.1', '198.18.0.1/33', '198.18.0.1/-1', '198.18.0.1/+8', '198.18.0.1/08', '198.18.0.1/', '2001:2::/129', 'fe80::1%eth0/64', '1::2::3/64', 'x/8', '/8'];
  for (const text of bad) {
    assert.equal(canonicalPrefix(text), null, text);
    assertError(`public_key=${hex(1)}\nallowed_ip=${text}`, UapiErrno.EINVAL, 2);
  }
});
