import { test } from 'node:test';
import assert from 'node:assert/strict';
import { errorCode as code } from '../error-code.js';
import {
  hasValidLength,
  messageType,
  parseCookieReply,
  parseInitiation,
  parseMessage,
  parseResponse,
  parseTransport,
  serializeCookieReply,
  serializeInitiation,
  serializeResponse,
  writeTransportHeader,
} from '../../src/wg/messages.js';

const filled = (n: number, v: number): Uint8Array => new Uint8Array(n).fill(v);

test('initiation (§5.4.2): 148 bytes, little-endian sender, fields at their offsets, round trip', () => {
  const b = serializeInitiation({ sender: 0x01020304, ephemeral: filled(32, 1), encryptedStatic: filled(48, 2), encryptedTimestamp: filled(28, 3), mac1: filled(16, 4), mac2: filled(16, 5) });
  assert.equal(b.length, 148);
  assert.deepEqual([...b.subarray(0, 8)], [1, 0, 0, 0, 4, 3, 2, 1]);
  assert.equal(b[8], 1);
  assert.equal(b[40], 2);
  assert.equal(b[88], 3);
  assert.equal(b[116], 4);
  assert.equal(b[147], 5);
  const m = parseInitiation(b);
  assert.equal(m.sender, 0x01020304);
  assert.deepEqual(m.encryptedTimestamp, filled(28, 3));
  assert.deepEqual(m.mac2, filled(16, 5));
  assert.equal(parseMessage(b).type, 1);
});

test('response (§5.4.3): 92 bytes; cookie reply (§5.4.7): 64 bytes; round trips', () => {
  const r = serializeResponse({ sender: 7, receiver: 0xfffffffe, ephemeral: filled(32, 1), encryptedNothing: filled(16, 2), mac1: filled(16, 3), mac2: filled(16, 4) });
  assert.equal(r.length, 92);
  const pr = parseResponse(r);
  assert.equal(pr.sender, 7);
  assert.equal(pr.receiver, 0xfffffffe);
  assert.deepEqual(pr.encryptedNothing, filled(16, 2));
  assert.deepEqual(pr.mac1, filled(16, 3));
  const c = serializeCookieReply({ receiver: 9, nonce: filled(24, 1), encryptedCookie: filled(32, 2) });
  assert.equal(c.length, 64);
  const pc = parseCookieReply(c);
  assert.equal(pc.receiver, 9);
  assert.deepEqual(pc.nonce, filled(24, 1));
  assert.deepEqual(pc.encryptedCookie, filled(32, 2));
});

test('transport (§5.4.6): header with 64-bit LE counter; keepalive is 32 bytes; the content is a view', () => {
  const b = new Uint8Array(48);
  writeTransportHeader(b, 0, 0xdeadbeef, 0x89abcdef, 0x01234567);
  const t = parseTransport(b);
  assert.equal(t.receiver, 0xdeadbeef);
  assert.equal(t.counter, 0x0123456789abcdefn);
  assert.equal(t.encrypted.length, 32);
  assert.equal(t.encrypted.buffer, b.buffer);
  assert.equal(parseTransport(b.subarray(0, 32)).encrypted.length, 16, 'keepalive');
  assert.equal(code(() => parseTransport(b.subarray(0, 31))), 'ERR_WG_MESSAGE_LENGTH');
});

test('coded failures: wrong length for each type, unknown type, reserved bytes, short datagrams', () => {
  const init = new Uint8Array(148);
  init[0] = 1;
  assert.equal(code(() => parseInitiation(init.subarray(0, 147))), 'ERR_WG_MESSAGE_LENGTH');
  assert.equal(code(() => parseInitiation(Uint8Array.from([...init, 0]))), 'ERR_WG_MESSAGE_LENGTH');
  assert.equal(code(() => parseResponse(init)), 'ERR_WG_MESSAGE_TYPE', 'an initiation is not a response');
  const resp = new Uint8Array(92);
  resp[0] = 2;
  assert.equal(code(() => parseResponse(resp.subarray(0, 91))), 'ERR_WG_MESSAGE_LENGTH');
  const cookie = new Uint8Array(65);
  cookie[0] = 3;
  assert.equal(code(() => parseCookieReply(cookie)), 'ERR_WG_MESSAGE_LENGTH');
  const reserved = Uint8Array.from(init);
  reserved[2] = 1;
  assert.equal(messageType(reserved), 0);
  assert.equal(code(() => parseMessage(reserved)), 'ERR_WG_MESSAGE_TYPE');
  const five = new Uint8Array(148);
  five[0] = 5;
  assert.equal(code(() => parseMessage(five)), 'ERR_WG_MESSAGE_TYPE');
  assert.equal(code(() => parseMessage(new Uint8Array(3))), 'ERR_WG_MESSAGE_LENGTH');
  assert.equal(code(() => parseMessage(new Uint8Array(0))), 'ERR_WG_MESSAGE_LENGTH');
  assert.equal(messageType(new Uint8Array(2)), 0);
  assert.ok(hasValidLength(4, 32) && !hasValidLength(4, 31) && hasValidLength(1, 148) && !hasValidLength(2, 148));
  assert.equal(code(() => serializeInitiation({ sender: 1, ephemeral: filled(31, 0), encryptedStatic: filled(48, 0), encryptedTimestamp: filled(28, 0), mac1: filled(16, 0), mac2: filled(16, 0) })), 'ERR_WG_MESSAGE_LENGTH');
});
