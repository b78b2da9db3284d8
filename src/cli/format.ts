/**
 * Output formatting for the `vectun` command: units, the live progress line
 * and plain-text tables. Pure functions (no I/O), so they are unit-tested
 * byte for byte; the commands only decide where the strings go.
 * @module
 */

/** Bits per second in Gbit/s or Mbit/s with three significant digits. */
export function formatBitRate(bitsPerSecond: number): string {
  if (!Number.isFinite(bitsPerSecond) || bitsPerSecond < 0) return 'n/a';
  if (bitsPerSecond >= 1e9) return `${sig3(bitsPerSecond / 1e9)} Gbit/s`;
  if (bitsPerSecond >= 1e6) return `${sig3(bitsPerSecond / 1e6)} Mbit/s`;
  if (bitsPerSecond >= 1e3) return `${sig3(bitsPerSecond / 1e3)} kbit/s`;
  return `${Math.round(bitsPerSecond)} bit/s`;
}

/** Gbit/s as a bare number with two decimals, for table cells. */
export function gbits(bytes: number, seconds: number): number {
  if (!(seconds > 0)) return 0;
  return (bytes * 8) / seconds / 1e9;
}

/** Byte counts in binary units (KiB, MiB, GiB), as iproute2 and ls -h do. */
export function formatBytes(bytes: number): string {
  if (!Number.isFinite(bytes) || bytes < 0) return 'n/a';
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = bytes;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return u === 0 ? `${v} B` : `${sig3(v)} ${units[u]}`;
}

/** A ratio such as packets per write: `n/a` when nothing was counted. */
export function formatRatio(numerator: number, denominator: number): string {
  if (!(denominator > 0)) return 'n/a';
  return (numerator / denominator).toFixed(1);
}

/** Three significant digits without exponent notation (1.23, 12.3, 123, 1234). */
function sig3(v: number): string {
  if (v >= 100) return v.toFixed(0);
  if (v >= 10) return v.toFixed(1);
  return v.toFixed(2);
}

/** One sample of a running transfer, as the progress line shows it. */
export interface ProgressSample {
  /** Short label of the run, e.g. `offload` or `no offload`. */
  label: string;
  /** Seconds since the transfer started. */
  elapsed: number;
  /** Planned duration in seconds. */
  seconds: number;
  /** Payload bytes the receiver has verified so far. */
  bytes: number;
  /** Throughput over the last interval, bits per second. */
  bitsPerSecond: number;
  /** Device counters over the last interval, data direction. */
  packetsWritten: number;
  writes: number;
  segmentsRead: number;
  framesRead: number;
}

/**
 * The progress line: `[offload] 3.0/10 s  1.20 GiB  9.41 Gbit/s  segs/read 18.9  pkts/write 21.3`.
 * `segs/read` is the split ratio (GSO on the read side: segments per frame
 * read), `pkts/write` the coalescing ratio (GRO on the write side: packets
 * per writev); both are 1.0 without offload.
 */
export function formatProgress(s: ProgressSample): string {
  const t = `${s.elapsed.toFixed(1)}/${s.seconds} s`;
  return (
    `[${s.label}] ${t.padStart(9)}  ${formatBytes(s.bytes).padStart(9)}  ` +
    `${formatBitRate(s.bitsPerSecond).padStart(12)}  ` +
    `segs/read ${formatRatio(s.segmentsRead, s.framesRead).padStart(5)}  ` +
    `pkts/write ${formatRatio(s.packetsWritten, s.writes).padStart(5)}`
  );
}

/** Where progress goes: a terminal gets one line rewritten in place. */
export interface ProgressSink {
  write(text: string): unknown;
  isTTY?: boolean;
  columns?: number;
}

/**
 * Shows progress samples: on a TTY one line redrawn in place (carriage
 * return + erase-to-end-of-line, cut to the terminal width so it never wraps);
 * otherwise one plain line per `plainEvery` seconds, so logs stay readable.
 */
export class ProgressReporter {
  private lastPlain = -Infinity;
  private drawn = false;

  constructor(
    private readonly out: ProgressSink,
    private readonly plainEvery = 1,
  ) {}

  update(sample: ProgressSample): void {
    const line = formatProgress(sample);
    if (this.out.isTTY === true) {
      const width = this.out.columns ?? 0;
      const cut = width > 1 && line.length >= width ? line.slice(0, width - 1) : line;
      this.out.write(`\r${cut}\x1b[K`);
      this.drawn = true;
      return;
    }
    if (sample.elapsed - this.lastPlain >= this.plainEvery - 1e-9) {
      this.lastPlain = sample.elapsed;
      this.out.write(`${line}\n`);
    }
  }

  /** Ends the in-place line so that what follows starts on a fresh line. */
  done(): void {
    if (this.drawn) this.out.write('\n');
    this.drawn = false;
    this.lastPlain = -Infinity;
  }
}

/** Column alignment in {@link formatTable}. */
export type Align = 'left' | 'right';

/**
 * A plain-text table: a header row, a rule of dashes and the rows, columns
 * separated by two spaces. Cells are strings; alignment per column
 * (default: left for the first column, right for the others, which suits
 * a label followed by numbers).
 */
export function formatTable(headers: readonly string[], rows: readonly (readonly string[])[], align?: readonly Align[]): string {
  const n = headers.length;
  for (const r of rows) {
    if (r.length !== n) throw new RangeError(`table row has ${r.length} cells, header has ${n}`);
  }
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const alignOf = (i: number): Align => align?.[i] ?? (i === 0 ? 'left' : 'right');
  const line = (cells: readonly string[]): string =>
    cells
      .map((c, i) => (alignOf(i) === 'left' ? c.padEnd(widths[i]!) : c.padStart(widths[i]!)))
      .join('  ')
      .trimEnd();
  return [line(headers), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)].join('\n') + '\n';
}

/** A two-column `key: value` block, keys padded to line up. */
export function formatFacts(facts: readonly (readonly [string, string])[]): string {
  const w = Math.max(0, ...facts.map(([k]) => k.length));
  return facts.map(([k, v]) => `${(k + ':').padEnd(w + 1)} ${v}`).join('\n') + '\n';
}
