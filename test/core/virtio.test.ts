import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  GSO_NONE,
  GSO_TCPV4,
  GSO_TCPV6,
  GSO_UDP_L4,
  VNET_F_DATA_VALID,
  VNET_F_NEEDS_CSUM,
  VNET_HDR_LEN,
  checkVirtioNetHeader,
  decodeVirtioNetHeader,
  encodeVirtioNetHeader,
  type VirtioNetHeader,
} from '../../src/core/virtio.js';
import { errorCode } from '../error-code.js';


test('HDR-1, HDR-2: field offsets, 16-bit fields little-endian', () => {
  const h: VirtioNetHeader = { needsCsum: true, gsoType: GSO_TCPV6, hdrLen: 0x1234, gsoSize: 0x05a8, csumStart: 0x0028, csumOffset: 0x0010 };
  const b = new Uint8Array(12).fill(0xee);
  encodeVirtioNetHeader(b, h, 1);
  assert.deepEqual([...b], [0xee, 1, 4, 0x34, 0x12, 0xa8, 0x05, 0x28, 0x00, 0x10, 0x00, 0xee]);
  assert.deepEqual(decodeVirtioNetHeader(b.subarray(1)), h);
  assert.equal(VNET_HDR_LEN, 10);
});

test('HDR-2 (TS-14): fewer than 10 bytes is ERR_VNET_HDR_SHORT; exactly 10 decodes', () => {
  for (let n = 0; n < 10; n++) assert.equal(errorCode(() => decodeVirtioNetHeader(new Uint8Array(n))), 'ERR_VNET_HDR_SHORT');
  assert.equal(decodeVirtioNetHeader(new Uint8Array(10)).gsoType, GSO_NONE);
});

test('HDR-6 (TS-9): exactly gso types 0, 1, 4, 5 are accepted; 3 and anything with the ECN bit are not', () => {
  const accepted: number[] = [];
  for (let t = 0; t < 256; t++) {
    const b = new Uint8Array(10);
    b[1] = t;
    const code = errorCode(() => checkVirtioNetHeader(b));
    if (code === 'no error') accepted.push(t);
    else assert.equal(code, 'ERR_GSO_TYPE_UNSUPPORTED', `type ${t}`);
    assert.equal(errorCode(() => decodeVirtioNetHeader(b)), code);
  }
  assert.deepEqual(accepted, [GSO_NONE, GSO_TCPV4, GSO_TCPV6, GSO_UDP_L4]);
});

test('HDR-3, HDR-7: needsCsum = flags & 1; DATA_VALID and other flag bits are ignored', () => {
  const b = new Uint8Array(10);
  for (const [flags, needs] of [[0, false], [VNET_F_NEEDS_CSUM, true], [VNET_F_DATA_VALID, false], [3, true], [0xfe, false], [0xff, true]] as const) {
    b[0] = flags;
    assert.equal(decodeVirtioNetHeader(b).needsCsum, needs, `flags ${flags}`);
  }
});

test('HDR-4, HDR-5: encode never sets DATA_VALID; the all-zero header round-trips', () => {
  const zero: VirtioNetHeader = { needsCsum: false, gsoType: GSO_NONE, hdrLen: 0, gsoSize: 0, csumStart: 0, csumOffset: 0 };
  const b = new Uint8Array(10).fill(0xff);
  encodeVirtioNetHeader(b, zero);
  assert.deepEqual([...b], Array<number>(10).fill(0));
  encodeVirtioNetHeader(b, { ...zero, needsCsum: true, gsoType: GSO_UDP_L4, hdrLen: 48, gsoSize: 1000, csumStart: 40, csumOffset: 6 });
  assert.equal(b[0], VNET_F_NEEDS_CSUM);
  assert.deepEqual(decodeVirtioNetHeader(b), { needsCsum: true, gsoType: GSO_UDP_L4, hdrLen: 48, gsoSize: 1000, csumStart: 40, csumOffset: 6 });
});
