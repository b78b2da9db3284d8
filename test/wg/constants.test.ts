import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as C from '../../src/wg/constants.js';
import { COOKIE_REPLY_OFFSETS, INITIATION_OFFSETS, RESPONSE_OFFSETS } from '../../src/wg/messages.js';

test('§6.1 timers and limits, in ms, as the whitepaper and wireguard-go', () => {
  assert.equal(C.REKEY_AFTER_MESSAGES, 2 ** 60);
  assert.equal(C.REJECT_AFTER_MESSAGES, 18446744073709543423n);
  assert.equal((BigInt(C.REJECT_AFTER_MESSAGES_HI) << 32n) | BigInt(C.REJECT_AFTER_MESSAGES_LO), C.REJECT_AFTER_MESSAGES);
  assert.deepEqual([C.REKEY_AFTER_TIME, C.REJECT_AFTER_TIME, C.REKEY_ATTEMPT_TIME, C.REKEY_TIMEOUT, C.KEEPALIVE_TIMEOUT, C.COOKIE_REFRESH_TIME], [120e3, 180e3, 90e3, 5e3, 10e3, 120e3]);
  assert.equal(C.MAX_TIMER_HANDSHAKES, 18);
  assert.equal(C.REKEY_TIMEOUT_JITTER_MAX, 334);
  assert.equal(C.HANDSHAKE_INITIATION_RATE, 20);
});

test('§5.4 message sizes agree with the field layout', () => {
  const K = C.KEY_SIZE;
  const T = C.AEAD_TAG_SIZE;
  const M = C.MAC_SIZE;
  assert.equal(C.MESSAGE_INITIATION_SIZE, 4 + 4 + K + (K + T) + (C.TIMESTAMP_SIZE + T) + M + M);
  assert.equal(C.MESSAGE_RESPONSE_SIZE, 4 + 4 + 4 + K + T + M + M);
  assert.equal(C.MESSAGE_COOKIE_REPLY_SIZE, 4 + 4 + C.XNONCE_SIZE + M + T);
  assert.equal(C.MESSAGE_KEEPALIVE_SIZE, 32);
  assert.equal(INITIATION_OFFSETS.mac2 + M, C.MESSAGE_INITIATION_SIZE);
  assert.equal(RESPONSE_OFFSETS.mac2 + M, C.MESSAGE_RESPONSE_SIZE);
  assert.equal(COOKIE_REPLY_OFFSETS.cookie + M + T, C.MESSAGE_COOKIE_REPLY_SIZE);
  assert.equal(C.CONSTRUCTION, 'Noise_IKpsk2_25519_ChaChaPoly_BLAKE2s');
  assert.equal(C.IDENTIFIER, 'WireGuard v1 zx2c4 Jason@zx2c4.com');
  assert.equal(C.LABEL_MAC1.length, 8);
  assert.equal(C.LABEL_COOKIE.length, 8);
});
