import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { VectunError } from '../../src/errors.js';
import { AllowedIps, canonicalCidr, parseAllowedIp } from '../../src/wg/allowed-ips.js';

function v4(a: string): Uint8Array {
  return Uint8Array.from(a.split('.').map(Number));
}
function v4Packet(src: string, dst: string): Uint8Array {
  const p = new Uint8Array(28);
  p[0] = 0x45;
  p.set(v4(src), 12);
  p.set(v4(dst), 16);
  return p;
}
function v6Packet(src: Uint8Array, dst: Uint8Array): Uint8Array {
  const p = new Uint8Array(48);
  p[0] = 0x60;
  p.set(src, 8);
  p.set(dst, 24);
  return p;
}
const V6A = Uint8Array.from([0x20, 0x01, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
const V6B = Uint8Array.from([0x20, 0x01, 0, 2, 0, 0, 0, 0x10, 0, 0, 0, 0, 0, 0, 0, 2]);

test('cryptokey routing (§2): longest-prefix match by destination, v4 and v6 separately', () => {
  const t = new AllowedIps<string>();
  t.insert('198.18.0.0/15', 'wide');
  t.insert('198.18.1.0/24', 'mid');
  t.insert('198.18.1.7/32', 'host');
  t.insert('2001:2::/48', 'v6');
  t.insert('2001:2:0:10::/64', 'v6b');
  assert.equal(t.lookupDestination(v4Packet('198.18.0.1', '198.18.1.7')), 'host');
  assert.equal(t.lookupDestination(v4Packet('198.18.0.1', '198.18.1.8')), 'mid');
  assert.equal(t.lookupDestination(v4Packet('198.18.0.1', '198.19.255.255')), 'wide');
  assert.equal(t.lookupDestination(v4Packet('198.18.0.1', '198.20.0.0')), null);
  assert.equal(t.lookupSource(v4Packet('198.18.1.7', '1.2.3.4')), 'host', 'source lookup for the receive check');
  assert.equal(t.lookupDestination(v6Packet(V6A, V6A)), 'v6');
  assert.equal(t.lookupDestination(v6Packet(V6A, V6B)), 'v6b');
  assert.equal(t.lookupSource(v6Packet(V6B, V6A)), 'v6b');
  assert.equal(t.lookupDestination(v4Packet('0.0.0.0', '32.1.0.2')), null, 'v4 bytes do not reach the v6 trie');
  const offset = new Uint8Array(100);
  offset.set(v4Packet('198.18.1.7', '198.18.1.8'), 10);
  assert.equal(t.lookupDestination(offset, 10), 'mid', 'at an offset');
  assert.equal(t.lookupDestination(v4Packet('1.1.1.1', '198.18.1.7').subarray(0, 19)), null, 'truncated v4');
  assert.equal(t.lookupDestination(v6Packet(V6A, V6A).subarray(0, 39)), null, 'truncated v6');
  assert.equal(t.lookupDestination(Uint8Array.of(0x50, 0, 0, 0)), null, 'not IP');
});

test('default routes and a re-inserted prefix moves to the new peer (wireguard-go Insert)', () => {
  const t = new AllowedIps<string>();
  t.insert('0.0.0.0/0', 'a');
  t.insert('::/0', 'a6');
  assert.equal(t.lookupDestination(v4Packet('1.1.1.1', '203.0.113.9')), 'a');
  assert.equal(t.lookupDestination(v6Packet(V6A, V6B)), 'a6');
  t.insert('0.0.0.0/0', 'b');
  assert.equal(t.lookupDestination(v4Packet('1.1.1.1', '203.0.113.9')), 'b');
  assert.deepEqual(t.entriesForPeer('a'), []);
  assert.deepEqual(t.entriesForPeer('b'), ['0.0.0.0/0']);
});

test('entries per peer: canonical CIDR with host bits masked, in insertion order (as wg show prints them)', () => {
  const t = new AllowedIps<string>();
  t.insert('198.18.1.77/24', 'p');
  t.insert('2001:0002:0000:0000:0000:0000:0000:0001/48', 'p');
  t.insert('2001:2:0:0:1:0:0:1/128', 'p');
  t.insert('::ffff:198.18.0.1/128', 'p');
  t.insert('198.18.9.9', 'p');
  assert.deepEqual(t.entriesForPeer('p'), ['198.18.1.0/24', '2001:2::/48', '2001:2::1:0:0:1/128', '::ffff:198.18.0.1/128', '198.18.9.9/32']);
  t.insert('198.18.1.0/24', 'p');
  assert.equal(t.entriesForPeer('p').at(-1), '198.18.1.0/24', 're-inserting moves a prefix to the end, same peer too (wireguard-go)');
  assert.equal(canonicalCidr('2001:2:0:1:0:0:0:0/64'), '2001:2:0:1::/64');
  assert.equal(canonicalCidr('2001:db8:0:0:1:0:0:0/127'), '2001:db8:0:0:1::/127', 'the longest zero run');
  assert.equal(canonicalCidr('2001:db8:0:0:1:0:0:1/128'), '2001:db8::1:0:0:1/128', 'the first of equal runs');
  assert.equal(canonicalCidr('1:0:1:0:1:0:1:0/128'), '1:0:1:0:1:0:1:0/128', 'no run of two');
  assert.deepEqual(parseAllowedIp('198.18.3.255/22'), { family: 4, address: Uint8Array.of(198, 18, 0, 0), cidr: 22 });
  assert.throws(() => t.insert('198.18.0.0/33', 'p'), (e: unknown) => e instanceof VectunError && e.code === 'ERR_INVALID_ARG');
  assert.throws(() => t.insert('nonsense', 'p'), (e: unknown) => e instanceof VectunError);
});

test('remove one prefix of a peer (not another peer\'s), and remove all of a peer; the trie prunes', () => {
  const t = new AllowedIps<string>();
  t.insert('198.18.0.0/16', 'a');
  t.insert('198.18.1.0/24', 'b');
  t.insert('198.18.1.128/25', 'a');
  t.insert('2001:2::/48', 'a');
  assert.equal(t.size, 4);
  assert.equal(t.remove('198.18.1.0/24', 'a'), false, 'belongs to b');
  assert.equal(t.remove('198.18.1.0/24', 'b'), true);
  assert.equal(t.lookupDestination(v4Packet('0.0.0.0', '198.18.1.1')), 'a', 'falls back to the /16');
  assert.equal(t.lookupDestination(v4Packet('0.0.0.0', '198.18.1.200')), 'a');
  t.removeByPeer('a');
  assert.equal(t.size, 0);
  assert.equal(t.lookupDestination(v4Packet('0.0.0.0', '198.18.1.200')), null);
  assert.equal(t.lookupDestination(v6Packet(V6A, V6A)), null);
  t.insert('198.18.1.0/24', 'c');
  assert.equal(t.lookupDestination(v4Packet('0.0.0.0', '198.18.1.200')), 'c', 'usable after pruning');
});

/** Reference: a list of (bits, cidr, peer), longest match by linear scan. */
function referenceLookup(entries: Map<string, { bits: number[]; cidr: number; peer: number }>, addr: number[]): number | null {
  let best: { cidr: number; peer: number } | null = null;
  for (const e of entries.values()) {
    let ok = true;
    for (let i = 0; i < e.cidr; i++) if (e.bits[i] !== addr[i]) ok = false;
    if (ok && (best === null || e.cidr > best.cidr)) best = e;
  }
  return best?.peer ?? null;
}

function bitsOf(bytes: Uint8Array): number[] {
  return [...bytes].flatMap((b) => Array.from({ length: 8 }, (_, i) => (b >> (7 - i)) & 1));
}

test('property: after random inserts and removals (v4 and v6), every lookup equals a linear longest-prefix scan', () => {
  const op = (len: 4 | 16) =>
    fc.record({
      remove: fc.boolean(),
      // Few distinct leading bytes so prefixes nest and share branches.
      address: fc.array(fc.constantFrom(0, 1, 128, 198, 255), { minLength: len, maxLength: len }).map((a) => Uint8Array.from(a)),
      cidr: fc.integer({ min: 0, max: len * 8 }),
      peer: fc.integer({ min: 0, max: 3 }),
    });
  for (const len of [4, 16] as const) {
    fc.assert(
      fc.property(fc.array(op(len), { minLength: 1, maxLength: 40 }), fc.array(fc.array(fc.constantFrom(0, 1, 128, 198, 255), { minLength: len, maxLength: len }), { minLength: 1, maxLength: 20 }), (ops, probes) => {
        const t = new AllowedIps<number>();
        const ref = new Map<string, { bits: number[]; cidr: number; peer: number }>();
        for (const o of ops) {
          const masked = bitsOf(o.address).map((b, i) => (i < o.cidr ? b : 0));
          const key = `${masked.join('')}/${o.cidr}`;
          if (o.remove) {
            const e = ref.get(key);
            const removed = t.remove(`${len === 4 ? [...o.address].join('.') : toV6(o.address)}/${o.cidr}`, o.peer);
            if (removed !== (e?.peer === o.peer)) return false;
            if (removed) ref.delete(key);
          } else {
            t.insertBytes(o.address, o.cidr, o.peer);
            ref.set(key, { bits: masked, cidr: o.cidr, peer: o.peer });
          }
        }
        for (const p of probes) {
          const addr = Uint8Array.from(p);
          if (t.lookupBytes(addr, 0, len) !== referenceLookup(ref, bitsOf(addr))) return false;
        }
        for (let peer = 0; peer < 4; peer++) {
          const expected = [...ref.values()].filter((e) => e.peer === peer).length;
          if (t.entriesForPeer(peer).length !== expected) return false;
        }
        return t.size === ref.size;
      }),
      { numRuns: 200, seed: 11 },
    );
  }
});

function toV6(b: Uint8Array): string {
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(((b[i]! << 8) | b[i + 1]!).toString(16));
  return groups.join(':');
}
