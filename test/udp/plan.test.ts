/**
 * The send planner (pure): which datagrams share one UDP_SEGMENT message
 * (udp(7): equal-size segments, the last may be shorter; the kernel's limits
 * UDP_MAX_SEGMENTS = 64 and 65507 payload bytes), and that every datagram
 * lands in exactly one message, in order.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { UdpEndpoint } from '../../src/udp/address.js';
import { SendPlan, UDP_GSO_MAX_BYTES, UDP_MAX_SEGMENTS, planSend, type PlanLimits } from '../../src/udp/plan.js';

const GSO: PlanLimits = { maxSegments: UDP_MAX_SEGMENTS, maxSegmentSize: 65527 };
const NO_GSO: PlanLimits = { maxSegments: 1, maxSegmentSize: 65527 };
const A = UdpEndpoint.of('198.18.0.1', 1);
const B = UdpEndpoint.of('198.18.0.2', 1);

function sized(...sizes: number[]): Uint8Array[] {
  return sizes.map((n) => new Uint8Array(n));
}

/** [first, count, segment] per message. */
function messages(datagrams: Uint8Array[], limits: PlanLimits, destinations?: UdpEndpoint[], skip?: Uint8Array): number[][] {
  const plan = new SendPlan();
  planSend(datagrams, destinations, skip, 0, limits, plan);
  const out: number[][] = [];
  for (let m = 0; m < plan.messages; m++) out.push([plan.plan[3 * m]!, plan.plan[3 * m + 1]!, plan.plan[3 * m + 2]!]);
  if (destinations !== undefined) assert.equal(plan.addresses.length, plan.messages);
  return out;
}

test('udp(7) UDP_SEGMENT: equal sizes form one run; a shorter last datagram joins it and ends it', () => {
  assert.deepEqual(messages(sized(1200, 1200, 1200, 500, 1200), GSO), [[0, 4, 1200], [4, 1, 0]]);
});

test('a larger datagram after a run starts a new message; a single datagram gets no segment size', () => {
  assert.deepEqual(messages(sized(100, 100, 200, 200, 7), GSO), [[0, 2, 100], [2, 3, 200]]);
  assert.deepEqual(messages(sized(100), GSO), [[0, 1, 0]]);
});

test('UDP_MAX_SEGMENTS: at most 64 datagrams per message', () => {
  const plan = messages(sized(...new Array<number>(130).fill(10)), GSO);
  assert.deepEqual(plan, [[0, 64, 10], [64, 64, 10], [128, 2, 10]]);
});

test('65507 bytes per GSO message (one IPv4 datagram of payload)', () => {
  // 54 * 1200 = 64800 fits, 55 * 1200 = 66000 does not.
  const plan = messages(sized(...new Array<number>(60).fill(1200)), GSO);
  assert.deepEqual(plan, [[0, 54, 1200], [54, 6, 1200]]);
  const total = (m: number[]): number => m[1]! * 1200;
  for (const m of plan) assert.ok(total(m) <= UDP_GSO_MAX_BYTES);
});

test('a change of destination ends a run; equal endpoints that are different objects do not', () => {
  const d = sized(10, 10, 10, 10);
  assert.deepEqual(messages(d, GSO, [A, A, B, B]), [[0, 2, 10], [2, 2, 10]]);
  assert.deepEqual(messages(d, GSO, [A, UdpEndpoint.of('198.18.0.1', 1), A, A]), [[0, 4, 10]]);
});

test('skipped (rejected) datagrams are left out and end a run; empty datagrams go alone', () => {
  const skip = new Uint8Array([0, 0, 1, 0, 0]);
  assert.deepEqual(messages(sized(10, 10, 10, 10, 10), GSO, undefined, skip), [[0, 2, 10], [3, 2, 10]]);
  assert.deepEqual(messages(sized(0, 0, 10), GSO), [[0, 1, 0], [1, 1, 0], [2, 1, 0]]);
});

test('without GSO (maxSegments 1) every datagram is its own message; maxSegmentSize keeps big ones out of runs', () => {
  assert.deepEqual(messages(sized(10, 10, 10), NO_GSO), [[0, 1, 0], [1, 1, 0], [2, 1, 0]]);
  assert.deepEqual(messages(sized(1472, 1472, 1000, 1000), { maxSegments: 64, maxSegmentSize: 1452 }), [[0, 1, 0], [1, 1, 0], [2, 2, 1000]]);
});

test('property: every datagram not skipped is in exactly one message, in order, and each message obeys the UDP_SEGMENT rules', () => {
  const arb = fc.record({
    sizes: fc.array(fc.oneof(fc.constantFrom(0, 1, 1200, 1472), fc.integer({ min: 0, max: 9000 })), { maxLength: 300 }),
    dests: fc.array(fc.boolean(), { maxLength: 300 }),
    skips: fc.array(fc.boolean(), { maxLength: 300 }),
    maxSegments: fc.constantFrom(1, 2, 64),
    maxSegmentSize: fc.constantFrom(1452, 65527),
  });
  fc.assert(
    fc.property(arb, ({ sizes, dests, skips, maxSegments, maxSegmentSize }) => {
      // Long runs of one size so the limits are reached.
      const data = sizes.flatMap((s, i) => new Array<number>(i % 7 === 0 ? 70 : 1).fill(s)).map((n) => new Uint8Array(n));
      const destinations = data.map((_, i) => (dests[i % Math.max(1, dests.length)] === true && i % 5 === 0 ? B : A));
      const skip = new Uint8Array(data.length).map((_, i) => (skips[i % Math.max(1, skips.length)] === true && i % 11 === 0 ? 1 : 0));
      const plan = messages(data, { maxSegments, maxSegmentSize }, destinations, skip);
      const covered: number[] = [];
      for (const [first, count, segment] of plan) {
        for (let j = first!; j < first! + count!; j++) covered.push(j);
        if (count! === 1) {
          assert.equal(segment, 0);
          continue;
        }
        assert.ok(count! <= Math.min(maxSegments, UDP_MAX_SEGMENTS));
        assert.equal(segment, data[first!]!.length);
        assert.ok(segment! > 0 && segment! <= maxSegmentSize);
        let total = 0;
        for (let j = first!; j < first! + count!; j++) {
          const len = data[j]!.length;
          total += len;
          assert.equal(destinations[j]!.key, destinations[first!]!.key);
          if (j < first! + count! - 1) assert.equal(len, segment);
          else assert.ok(len > 0 && len <= segment!);
        }
        assert.ok(total <= UDP_GSO_MAX_BYTES);
      }
      const expected = data.map((_, i) => i).filter((i) => skip[i] !== 1);
      assert.deepEqual(covered, expected);
    }),
    { numRuns: 200 },
  );
});
