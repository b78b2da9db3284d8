/**
 * What both binaries (`vectun`, `vectun-wg`) do around their command:
 * SIGINT/SIGTERM abort the running command through an AbortSignal so it can
 * remove what it created before exiting, a third signal forces the exit; a
 * closed stdout/stderr pipe (EPIPE) is not a crash; the exit code is the
 * command's, after a short window to flush output.
 * @module
 */
import type { CliIO } from './program.js';

/** Runs `command` on this process's arguments and exits with its code; `name` prefixes the one message of its own. */
export function runEntry(name: string, command: (argv: readonly string[], io: CliIO) => Promise<number>): void {
  const controller = new AbortController();
  let signals = 0;
  const onSignal = (signal: NodeJS.Signals): void => {
    signals++;
    if (signals === 1) {
      controller.abort(signal);
    } else if (signals === 2) {
      process.stderr.write(`\n${name}: still cleaning up; send the signal once more to exit at once (may leave namespaces behind)\n`);
    } else {
      process.exit(signal === 'SIGTERM' ? 143 : 130);
    }
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  // `vectun bench | head`, or a daemon whose caller has gone: a closed pipe must not crash the command before it has cleaned up.
  for (const stream of [process.stdout, process.stderr]) {
    stream.on('error', (err: NodeJS.ErrnoException) => {
      if (err.code !== 'EPIPE') throw err;
    });
  }

  const io: CliIO = { stdout: process.stdout, stderr: process.stderr, signal: controller.signal };
  void command(process.argv.slice(2), io).then((code) => {
    process.exitCode = code;
    // Leave time to flush output; do not wait forever on a handle someone forgot to close.
    setTimeout(() => process.exit(code), 1000).unref();
  });
}
