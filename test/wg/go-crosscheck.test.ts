/**
 * Cross-check against wireguard-go (the Debian source, built at test time by
 * test/wg/go-harness.ts): its own handshake, KDF, AEAD and cookie code must
 * accept our messages, produce our known-answer bytes when fed the same
 * ephemeral and index, and derive the same transport keys.
 * Skips without Go or the source, except under CI, where it fails.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { aeadOpen } from '../../src/wg/crypto.js';
import { CookieChecker, CookieGenerator, endpointBytes } from '../../src/wg/cookie.js';
import { Handshake, StaticIdentity, consumeInitiation } from '../../src/wg/noise.js';
import { parseTransport } from '../../src/wg/messages.js';
import { AllowedIps } from '../../src/wg/allowed-ips.js';
import { ReplayFilter } from '../../src/wg/replay.js';
import { REJECT_AFTER_MESSAGES } from '../../src/wg/constants.js';
import { prng } from '../../fuzz/harness.js';
import { GoPeer, buildHarness, harnessUnavailableReason } from './go-harness.js';
import { KAT_INPUT, hex, sealTransport, unhex } from './kat.js';

const FIXTURE = JSON.parse(fs.readFileSync(path.join(__dirname, '..', '..', '..', 'test', 'wg', 'fixtures', 'handshake-kat.json'), 'utf8')) as Record<
  'psk' | 'noPsk',
  { initiatorPublic: string; responderPublic: string; initiation: string; response: string; initiatorSendKey: string; initiatorReceiveKey: string; transport: string }
>;

const unavailable = harnessUnavailableReason();
const skip = unavailable !== undefined && !process.env['CI'] ? `wireguard-go cross-check unavailable: ${unavailable}` : false;

function le32(n: number): string {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(n >>> 0);
  return b.toString('hex');
}

function openTransport(key: Uint8Array, msg: Uint8Array): Uint8Array | null {
  const t = parseTransport(msg);
  return aeadOpen(key, t.counter, t.encrypted, new Uint8Array(0));
}

describe('wireguard-go cross-check (whitepaper §5.4)', { skip }, () => {
  let binary = '';
  const peers: GoPeer[] = [];
  const goPeer = (): GoPeer => {
    const p = new GoPeer(binary);
    peers.push(p);
    return p;
  };
  before(() => {
    if (unavailable !== undefined) throw new Error(unavailable);
    binary = buildHarness();
  });
  after(async () => {
    for (const p of peers) await p.close();
  });

  for (const variant of ['psk', 'noPsk'] as const) {
    test(`KAT (${variant}): wireguard-go as responder, fed our fixed index and ephemeral, answers our initiation with our recorded response bytes and the same keys`, async () => {
      const f = FIXTURE[variant];
      const go = goPeer();
      const setup = await go.call({ op: 'new', priv: hex(KAT_INPUT.responderPrivate), peerPub: f.initiatorPublic, psk: variant === 'psk' ? hex(KAT_INPUT.presharedKey) : '' });
      assert.ok(setup.ok, setup.error);
      assert.equal(setup.pub, f.responderPublic, 'same public key from the same private key (X25519)');
      assert.ok((await go.call({ op: 'random', random: le32(KAT_INPUT.responderIndex) + hex(KAT_INPUT.responderEphemeral) })).ok);
      const consumed = await go.call({ op: 'consumeInitiation', msg: f.initiation });
      assert.ok(consumed.ok, `wireguard-go rejected our initiation: ${consumed.error}`);
      const response = await go.call({ op: 'createResponse' });
      assert.ok(response.ok, response.error);
      assert.equal(response.msg, f.response, 'response bytes (incl. mac1) identical');
      assert.equal(response.recvKey, f.initiatorSendKey, 'its receive key is our send key');
      assert.equal(response.sendKey, f.initiatorReceiveKey, 'its send key is our receive key');
      const opened = await go.call({ op: 'open', msg: f.transport });
      assert.ok(opened.ok, `wireguard-go rejected our transport message: ${opened.error}`);
      assert.equal(opened.plaintext, hex(KAT_INPUT.plaintext));
      assert.equal(opened.rotated, true, 'first data confirms the responder next keypair (wireguard-go ReceivedWithKeypair)');
      const replayed = await go.call({ op: 'open', msg: f.transport });
      assert.equal(replayed.ok, false, 'the same counter again is a replay for wireguard-go too');
      const sealed = await go.call({ op: 'seal', plaintext: hex(KAT_INPUT.plaintext) });
      assert.ok(sealed.ok, sealed.error);
      assert.deepEqual(openTransport(unhex(f.initiatorReceiveKey), unhex(sealed.msg!)), KAT_INPUT.plaintext);
    });
  }

  test('wireguard-go as initiator, we respond: it accepts our response, both derive the same keys, transport both ways', async () => {
    const ours = StaticIdentity.generate();
    const goKey = StaticIdentity.generate();
    const psk = StaticIdentity.generate().privateKey;
    const go = goPeer();
    const setup = await go.call({ op: 'new', priv: hex(goKey.privateKey), peerPub: hex(ours.publicKey), psk: hex(psk) });
    assert.ok(setup.ok, setup.error);
    const peer = { handshake: new Handshake(ours, goKey.publicKey, psk) };
    const init = await go.call({ op: 'createInitiation' });
    assert.ok(init.ok, init.error);
    const initiation = unhex(init.msg!);
    assert.ok(new CookieChecker(ours.publicKey).checkMac1(initiation), 'its mac1 is valid for us');
    assert.equal(consumeInitiation(ours, initiation, (k) => (Buffer.from(k).equals(goKey.publicKey) ? peer : undefined)), peer);
    const response = peer.handshake.createResponse(0xa1b2c3d4);
    new CookieGenerator(goKey.publicKey).addMacs(response);
    const consumed = await go.call({ op: 'consumeResponse', msg: hex(response) });
    assert.ok(consumed.ok, `wireguard-go rejected our response: ${consumed.error}`);
    const keys = peer.handshake.deriveKeypair();
    assert.equal(keys.isInitiator, false);
    assert.equal(hex(keys.sendKey), consumed.recvKey);
    assert.equal(hex(keys.receiveKey), consumed.sendKey);
    const payload = new TextEncoder().encode('from vectun, counter 7');
    const opened = await go.call({ op: 'open', msg: hex(sealTransport(keys.sendKey, keys.remoteIndex, 7, payload)) });
    assert.ok(opened.ok, opened.error);
    assert.equal(opened.plaintext, hex(payload));
    const sealed = await go.call({ op: 'seal', plaintext: hex(payload) });
    const t = parseTransport(unhex(sealed.msg!));
    assert.equal(t.receiver, keys.localIndex, 'it addresses our index');
    assert.deepEqual(openTransport(keys.receiveKey, unhex(sealed.msg!)), payload);
  });

  test('cookies (§5.4.7): its cookie reply opens with our generator and our mac2 passes its checker; and the other way round', async () => {
    const ours = StaticIdentity.generate();
    const goKey = StaticIdentity.generate();
    const go = goPeer();
    assert.ok((await go.call({ op: 'new', priv: hex(goKey.privateKey), peerPub: hex(ours.publicKey) })).ok);
    const src = endpointBytes(Uint8Array.of(198, 18, 0, 1), 51820);
    const otherSrc = endpointBytes(Uint8Array.of(198, 18, 0, 2), 51820);

    // Go under load answers our initiation with a cookie; we use it for mac2.
    const hs = new Handshake(ours, goKey.publicKey);
    const generator = new CookieGenerator(goKey.publicKey);
    const first = hs.createInitiation(1);
    generator.addMacs(first);
    const reply = await go.call({ op: 'cookieReply', msg: hex(first), src: hex(src) });
    assert.ok(reply.ok, reply.error);
    assert.equal(generator.consumeReply(unhex(reply.msg!)), true, 'its XChaCha20-Poly1305 cookie opens with our key and mac1');
    const second = hs.createInitiation(2);
    generator.addMacs(second);
    assert.equal((await go.call({ op: 'checkMac2', msg: hex(second), src: hex(src) })).ok, true, 'our mac2 passes');
    assert.equal((await go.call({ op: 'checkMac2', msg: hex(second), src: hex(otherSrc) })).ok, false, 'bound to the source');

    // We answer its initiation with a cookie; its next initiation carries a mac2 we accept.
    const checker = new CookieChecker(ours.publicKey);
    const goInit = unhex((await go.call({ op: 'createInitiation' })).msg!);
    assert.equal(checker.checkMac2(goInit, src), false, 'no cookie yet');
    const ourReply = checker.createReply(goInit, goInit[4]! | (goInit[5]! << 8) | (goInit[6]! << 16) | (goInit[7]! << 24), src)!;
    assert.equal((await go.call({ op: 'consumeCookieReply', msg: hex(ourReply) })).ok, true, 'it opens our cookie reply');
    const goInit2 = unhex((await go.call({ op: 'createInitiation' })).msg!);
    assert.ok(checker.checkMac1(goInit2));
    assert.equal(checker.checkMac2(goInit2, src), true, 'its mac2 passes our checker');
    assert.equal(checker.checkMac2(goInit2, otherSrc), false);
  });

  test('replay window (§5.4.6): on random counter sequences (reordering, jumps, 64-bit values, the REJECT_AFTER_MESSAGES edge) every verdict equals wireguard-go replay.Filter', async () => {
    const go = goPeer();
    for (let seq = 0; seq < 12; seq++) {
      const r = prng(1000 + seq);
      const counters: bigint[] = [];
      let cur = BigInt(r(100));
      for (let i = 0; i < 400; i++) {
        const k = r(12);
        if (k < 6) cur += BigInt(r(130)) - 60n;
        else if (k < 8) cur += BigInt(r(20_000)) - 9_000n;
        else if (k === 8) cur = (BigInt(r(2 ** 31)) << 33n) | BigInt(r(2 ** 31));
        else if (k === 9) cur = REJECT_AFTER_MESSAGES - BigInt(r(4)) + 1n;
        else if (k === 10) cur += 8_128n * BigInt(r(3)) - 8_128n;
        // else: repeat
        if (cur < 0n) cur = 0n;
        if (cur >= 1n << 64n) cur = (1n << 64n) - 1n;
        counters.push(cur);
      }
      const ours = new ReplayFilter();
      const expected = counters.map((c) => String(ours.checkCounter(c)));
      const reply = await go.call({ op: 'replay', counters: counters.map(String) });
      assert.ok(reply.ok, reply.error);
      const firstDiff = expected.findIndex((v, i) => v !== reply.results![i]);
      assert.equal(firstDiff, -1, `sequence ${seq}: first difference at ${firstDiff} (counter ${counters[firstDiff]})`);
    }
  });

  test('AllowedIPs (§2): random insert/re-insert/removeByPeer scripts give wireguard-go\'s lookups and per-peer lists (order and canonical text)', async () => {
    const go = goPeer();
    const byte = (r: (n: number) => number): number => [0, 1, 2, 18, 128, 198, 255][r(7)]!;
    for (let run = 0; run < 25; run++) {
      const r = prng(2000 + run);
      const table = new AllowedIps<number>();
      const script: { op: string; prefix?: string; peer?: number; ip?: string }[] = [];
      const ours: string[] = [];
      for (let i = 0; i < 80; i++) {
        const k = r(10);
        const v6 = r(2) === 0;
        const addr = Uint8Array.from({ length: v6 ? 16 : 4 }, () => byte(r));
        const earlier = script.filter((x) => x.op === 'insert');
        if (k === 9 && earlier.length > 0) {
          // Re-insert an earlier prefix, often for the same peer: it moves to the end of the list.
          const again = earlier[r(earlier.length)]!;
          const peer = r(2) === 0 ? again.peer! : r(4);
          script.push({ op: 'insert', prefix: again.prefix!, peer });
          table.insert(again.prefix!, peer);
        } else if (k < 5) {
          const cidr = r(v6 ? 129 : 33);
          const text = v6 ? `${[...Array(8)].map((_, g) => ((addr[2 * g]! << 8) | addr[2 * g + 1]!).toString(16)).join(':')}/${cidr}` : `${[...addr].join('.')}/${cidr}`;
          const peer = r(4);
          script.push({ op: 'insert', prefix: text, peer });
          table.insert(text, peer);
        } else if (k === 5) {
          const peer = r(4);
          script.push({ op: 'removeByPeer', peer });
          table.removeByPeer(peer);
        } else {
          script.push({ op: 'lookup', ip: hex(addr) });
          ours.push(String(table.lookupBytes(addr, 0, addr.length as 4 | 16) ?? -1));
        }
      }
      for (let peer = 0; peer < 4; peer++) {
        script.push({ op: 'entries', peer });
        ours.push(table.entriesForPeer(peer).join(','));
      }
      const reply = await go.call({ op: 'allowedips', script });
      assert.ok(reply.ok, reply.error);
      assert.deepEqual(ours, reply.results ?? [], `script ${run}`);
    }
  });
});
