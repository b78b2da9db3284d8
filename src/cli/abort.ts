/**
 * Turning SIGINT/SIGTERM (an aborted `CliIO.signal`) into an unwinding error,
 * so a command leaves through its `finally` blocks and removes what it made.
 * @module
 */
import { ExitCode } from './exit-codes.js';

/** Thrown when the signal fires; carries the exit code for that signal. */
export class Interrupted extends Error {
  readonly signalName: string;
  constructor(signalName: string) {
    super(`interrupted by ${signalName}`);
    this.name = 'Interrupted';
    this.signalName = signalName;
  }
  /** 130 for SIGINT, 143 for SIGTERM (128 + signal number, as shells report). */
  get exitCode(): number {
    return this.signalName === 'SIGTERM' ? ExitCode.TERMINATED : ExitCode.INTERRUPTED;
  }
}

export function throwIfAborted(signal: AbortSignal): void {
  if (signal.aborted) throw new Interrupted(String(signal.reason));
}

/** `work`, unless the signal fires first; a late rejection of `work` is then ignored. */
export function raceAbort<T>(work: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) {
    work.catch(() => undefined);
    return Promise.reject(new Interrupted(String(signal.reason)));
  }
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => {
      work.catch(() => undefined);
      reject(new Interrupted(String(signal.reason)));
    };
    signal.addEventListener('abort', onAbort, { once: true });
    work.then(
      (v) => {
        signal.removeEventListener('abort', onAbort);
        resolve(v);
      },
      (e: unknown) => {
        signal.removeEventListener('abort', onAbort);
        // Ctrl-C reaches child processes too (same process group): report the interruption, not their death.
        reject(signal.aborted ? new Interrupted(String(signal.reason)) : e);
      },
    );
  });
}
