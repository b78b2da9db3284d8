import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  ProgressReporter,
  formatBitRate,
  formatBytes,
  formatFacts,
  formatProgress,
  formatRatio,
  formatTable,
  gbits,
  type ProgressSample,
} from '../../src/cli/format.js';

test('bit rates pick the unit and keep three significant digits', () => {
  assert.equal(formatBitRate(9.412e9), '9.41 Gbit/s');
  assert.equal(formatBitRate(12.345e9), '12.3 Gbit/s');
  assert.equal(formatBitRate(123.4e9), '123 Gbit/s');
  assert.equal(formatBitRate(950e6), '950 Mbit/s');
  assert.equal(formatBitRate(1.5e3), '1.50 kbit/s');
  assert.equal(formatBitRate(12), '12 bit/s');
  assert.equal(formatBitRate(0), '0 bit/s');
  assert.equal(formatBitRate(Number.NaN), 'n/a');
  assert.equal(formatBitRate(-1), 'n/a');
});

test('gbits: bytes over seconds in Gbit/s, 0 for a zero duration', () => {
  assert.equal(gbits(1.25e9, 1), 10);
  assert.equal(gbits(1.25e9, 2), 5);
  assert.equal(gbits(100, 0), 0);
});

test('byte counts use binary units', () => {
  assert.equal(formatBytes(0), '0 B');
  assert.equal(formatBytes(1023), '1023 B');
  assert.equal(formatBytes(1024), '1.00 KiB');
  assert.equal(formatBytes(1536 * 1024), '1.50 MiB');
  assert.equal(formatBytes(5 * 2 ** 30), '5.00 GiB');
  assert.equal(formatBytes(300 * 2 ** 30), '300 GiB');
});

test('ratios say n/a when nothing was counted', () => {
  assert.equal(formatRatio(2130, 100), '21.3');
  assert.equal(formatRatio(5, 0), 'n/a');
});

const sample: ProgressSample = {
  label: 'offload',
  elapsed: 3,
  seconds: 10,
  bytes: 1.2 * 2 ** 30,
  bitsPerSecond: 9.41e9,
  packetsWritten: 2130,
  writes: 100,
  segmentsRead: 1890,
  framesRead: 100,
};

test('progress line shows throughput, packets per write and segments per read', () => {
  assert.equal(
    formatProgress(sample),
    '[offload]  3.0/10 s   1.20 GiB   9.41 Gbit/s  segs/read  18.9  pkts/write  21.3',
  );
  assert.match(formatProgress({ ...sample, writes: 0, framesRead: 0 }), /segs\/read +n\/a +pkts\/write +n\/a$/);
});

function sink(isTTY: boolean, columns?: number) {
  const writes: string[] = [];
  return { writes, out: { isTTY, columns, write: (s: string) => writes.push(s) } };
}

test('on a TTY the progress line is redrawn in place and cut to the terminal width', () => {
  const { writes, out } = sink(true, 40);
  const r = new ProgressReporter(out);
  r.update(sample);
  r.update({ ...sample, elapsed: 3.1 });
  r.done();
  assert.equal(writes.length, 3);
  for (const w of writes.slice(0, 2)) {
    assert.ok(w.startsWith('\r') && w.endsWith('\x1b[K'), JSON.stringify(w));
    assert.equal(w.length, 1 + 39 + 3, 'one column less than the width, so it never wraps');
  }
  assert.equal(writes[2], '\n');
});

test('without a TTY progress is one plain line per interval, no control characters', () => {
  const { writes, out } = sink(false);
  const r = new ProgressReporter(out, 1);
  for (let t = 0; t <= 3; t += 0.25) r.update({ ...sample, elapsed: t });
  r.done();
  assert.equal(writes.length, 4, 'at 0, 1, 2 and 3 s');
  for (const w of writes) {
    assert.ok(w.endsWith('\n'));
    assert.doesNotMatch(w, /[\r\x1b]/);
  }
  assert.match(writes[3]!, /^\[offload\] +3\.0\/10 s/);
});

test('tables align a label column left and number columns right', () => {
  const t = formatTable(
    ['run', 'Gbit/s', 'drops'],
    [
      ['offload', '9.41', '0'],
      ['no offload', '1.20', '12'],
    ],
  );
  assert.equal(
    t,
    'run         Gbit/s  drops\n' +
      '----------  ------  -----\n' +
      'offload       9.41      0\n' +
      'no offload    1.20     12\n',
  );
  assert.throws(() => formatTable(['a', 'b'], [['1']]), RangeError);
});

test('facts line up after their keys', () => {
  assert.equal(formatFacts([['cores', '2'], ['kernel', '6.8.0']]), 'cores:  2\nkernel: 6.8.0\n');
});
