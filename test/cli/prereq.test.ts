import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import {
  checkPrerequisites,
  describeMissing,
  findOnPath,
  hasCapability,
  parseCapEff,
  type PrerequisiteProbe,
} from '../../src/cli/prereq.js';

const status = (capEff: string): string => `Name:\tnode\nUid:\t0\t0\t0\t0\nCapInh:\t0000000000000000\nCapEff:\t${capEff}\n`;

function probe(p: Partial<PrerequisiteProbe>): PrerequisiteProbe {
  return {
    procStatus: () => status('000001ffffffffff'),
    uid: () => 0,
    tunNode: () => 'char',
    findIp: () => '/usr/sbin/ip',
    ...p,
  };
}

test('CapEff is parsed from /proc/self/status; bits 12 and 21 are NET_ADMIN and SYS_ADMIN', () => {
  assert.equal(parseCapEff(status('000001fffeffffff')), 0x1fffeffffffn);
  assert.equal(parseCapEff('Name: x\n'), undefined);
  assert.equal(hasCapability(0x1000n, 12), true);
  assert.equal(hasCapability(0x0fffn, 12), false);
  assert.equal(hasCapability(1n << 21n, 21), true);
});

test('root with full capabilities, a tun node and ip: every check passes', () => {
  const r = checkPrerequisites({ namespaces: true }, probe({}));
  assert.deepEqual(
    r.map((x) => [x.id, x.ok]),
    [
      ['privileges', true],
      ['tun', true],
      ['iproute2', true],
    ],
  );
  assert.equal(describeMissing(r), undefined);
});

test('every missing prerequisite is reported at once, each with a fix', () => {
  const r = checkPrerequisites(
    { namespaces: true },
    probe({ uid: () => 1000, procStatus: () => status('0000000000000000'), tunNode: () => 'missing', findIp: () => undefined }),
  );
  assert.deepEqual(
    r.filter((x) => !x.ok).map((x) => x.id),
    ['privileges', 'tun', 'iproute2'],
  );
  const text = describeMissing(r)!;
  assert.match(text, /uid 1000 without CAP_NET_ADMIN and CAP_SYS_ADMIN/);
  assert.match(text, /\/dev\/net\/tun does not exist/);
  assert.match(text, /modprobe tun/);
  assert.match(text, /ip command not found/);
  assert.match(text, /apt-get install iproute2/);
});

test('root inside a container without CAP_SYS_ADMIN cannot create namespaces', () => {
  const capNetAdminOnly = (1n << 12n).toString(16).padStart(16, '0');
  const r = checkPrerequisites({ namespaces: true }, probe({ procStatus: () => status(capNetAdminOnly) }));
  assert.equal(r[0]!.ok, false);
  assert.match(r[0]!.detail, /^root without CAP_SYS_ADMIN$/);
});

test('uid decides only when /proc/self/status is unreadable', () => {
  assert.equal(checkPrerequisites({ namespaces: true }, probe({ procStatus: () => undefined, uid: () => 0 }))[0]!.ok, true);
  const r = checkPrerequisites({ namespaces: true }, probe({ procStatus: () => undefined, uid: () => 1000 }));
  assert.equal(r[0]!.ok, false);
  assert.match(r[0]!.detail, /could not read/);
});

test('bridge needs only /dev/net/tun up front (a user-owned persistent device needs no capability)', () => {
  const r = checkPrerequisites({ namespaces: false }, probe({ uid: () => 1000, procStatus: () => status('0'), findIp: () => undefined }));
  assert.deepEqual(r.map((x) => [x.id, x.ok]), [['tun', true]]);
  const bad = checkPrerequisites({ namespaces: false }, probe({ tunNode: () => 'other' }));
  assert.match(describeMissing(bad)!, /not a character device/);
  const denied = describeMissing(checkPrerequisites({ namespaces: false }, probe({ tunNode: () => 'no-access' })))!;
  assert.match(denied, /no read\/write access to \/dev\/net\/tun/);
  assert.match(denied, /chmod 0666 \/dev\/net\/tun/);
});

test('findOnPath finds executables only, and searches the extra directories last', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vectun-path-'));
  try {
    const a = path.join(dir, 'a');
    const b = path.join(dir, 'b');
    fs.mkdirSync(a);
    fs.mkdirSync(b);
    fs.writeFileSync(path.join(a, 'ip'), 'not executable', { mode: 0o644 });
    fs.writeFileSync(path.join(b, 'ip'), '#!/bin/sh\n', { mode: 0o755 });
    fs.mkdirSync(path.join(a, 'dirnamed'));
    assert.equal(findOnPath('ip', a), undefined);
    assert.equal(findOnPath('ip', `${a}${path.delimiter}${b}`), path.join(b, 'ip'));
    assert.equal(findOnPath('ip', a, [b]), path.join(b, 'ip'));
    assert.equal(findOnPath('dirnamed', a), undefined);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('the real system probe agrees with /proc on this machine', () => {
  const r = checkPrerequisites({ namespaces: true });
  const cap = parseCapEff(fs.readFileSync('/proc/self/status', 'utf8'));
  assert.equal(r[0]!.ok, cap !== undefined && hasCapability(cap, 12) && hasCapability(cap, 21));
  assert.equal(r[1]!.ok, fs.existsSync('/dev/net/tun') && fs.statSync('/dev/net/tun').isCharacterDevice());
});
