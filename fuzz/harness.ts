/**
 * What the fuzz targets share (fuzz/run.ts: the offload core, fuzz/wg.ts:
 * the WireGuard messages): the seeded case stream, the violation type and the
 * bounded loop that stops at the first violation, so every target replays a
 * case the same way (`--case N`).
 * @module
 */

/** Bounds and seeds of a fuzz run. */
export interface FuzzOptions {
  seed?: number;
  count?: number;
  seconds?: number;
  /** Run exactly this case seed once (replay). */
  caseSeed?: number;
}

/** The first broken invariant of a run, with the case seed that reproduces it. */
export interface FuzzViolation {
  caseSeed: number;
  kind: string;
  message: string;
}

/** What every target's report has; targets add their own case counters. */
export interface FuzzReportBase {
  cases: number;
  seconds: number;
  /** Set on the first violation. */
  violation?: FuzzViolation;
}

/** mulberry32: small, fast, good enough to drive mutations. */
export function prng(seed: number): (n: number) => number {
  let a = seed >>> 0;
  return (n: number) => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (((t ^ (t >>> 14)) >>> 0) % n) >>> 0;
  };
}

/** Case seed i of a run: a fixed mix of the run seed and the case number. */
export function caseSeedOf(seed: number, i: number): number {
  let h = (seed ^ Math.imul(i + 1, 0x9e3779b1)) >>> 0;
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b) >>> 0;
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35) >>> 0;
  return (h ^ (h >>> 16)) >>> 0;
}

/** A broken invariant; `kind` names it in the report. */
export class Violation extends Error {
  constructor(
    readonly kind: string,
    message: string,
  ) {
    super(message);
  }
}

/**
 * Runs `runCase` on case seeds from `seed` (mixed with a per-target `salt`)
 * until `count` cases or `seconds` have passed, or once on `caseSeed`; the
 * first throw ends the run as `report.violation` (a non-Violation throw is a
 * harness error).
 */
export function runCases<R extends FuzzReportBase>(o: FuzzOptions, salt: number, report: R, runCase: (caseSeed: number) => void): R {
  const seed = o.seed ?? 1;
  const count = o.caseSeed !== undefined ? 1 : o.count ?? 500;
  const deadline = Date.now() + (o.seconds ?? 30) * 1000;
  const t0 = Date.now();
  for (let i = 0; i < count && Date.now() < deadline; i++) {
    const cs = o.caseSeed ?? caseSeedOf(seed ^ salt, i);
    try {
      runCase(cs);
    } catch (e) {
      const v = e instanceof Violation ? e : new Violation('harness', e instanceof Error ? e.stack ?? e.message : String(e));
      report.violation = { caseSeed: cs, kind: v.kind, message: v.message };
      break;
    }
    report.cases++;
  }
  report.seconds = (Date.now() - t0) / 1000;
  return report;
}
