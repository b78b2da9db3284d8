/** A `CliIO` that records what a command writes, for the CLI tests. */
import type { CliIO } from '../../src/cli/program.js';

/** What a command wrote to stdout and stderr through `io`. */
export interface Captured {
  io: CliIO;
  out: () => string;
  err: () => string;
}

/** A recording `CliIO`; `signal` stands in for SIGINT/SIGTERM (never aborted by default). */
export function capture(signal: AbortSignal = new AbortController().signal): Captured {
  let out = '';
  let err = '';
  return {
    io: { stdout: { write: (s: string) => (out += s) }, stderr: { write: (s: string) => (err += s) }, signal },
    out: () => out,
    err: () => err,
  };
}
