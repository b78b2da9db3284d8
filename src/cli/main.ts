#!/usr/bin/env node
/**
 * Entry point of the `vectun` binary (package.json `bin`).
 *
 * SIGINT/SIGTERM abort the running command through an AbortSignal so it can
 * remove what it created before exiting; a third signal forces the exit.
 * @module
 */
import { runCli, type CliIO } from './program.js';

async function main(): Promise<void> {
  const controller = new AbortController();
  let signals = 0;
  const onSignal = (name: NodeJS.Signals): void => {
    signals++;
    if (signals === 1) {
      controller.abort(name);
    } else if (signals === 2) {
      process.stderr.write('\nvectun: still cleaning up; send the signal once more to exit at once (may leave namespaces behind)\n');
    } else {
      process.exit(name === 'SIGTERM' ? 143 : 130);
    }
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  // `vectun bench | head`: a closed pipe must not crash the command before it has cleaned up.
  for (const stream of [process.stdout, process.stderr]) {
    stream.on('error', (err: NodeJS.ErrnoException) => {
      if (err.code !== 'EPIPE') throw err;
    });
  }

  const io: CliIO = { stdout: process.stdout, stderr: process.stderr, signal: controller.signal };
  const code = await runCli(process.argv.slice(2), io);
  process.exitCode = code;
  // Leave time to flush output; do not wait forever on a handle someone forgot to close.
  setTimeout(() => process.exit(code), 1000).unref();
}

void main();
