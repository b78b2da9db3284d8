import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Interrupted, raceAbort, throwIfAborted } from '../../src/cli/abort.js';
import { ExitCode } from '../../src/cli/exit-codes.js';

test('Interrupted carries 130 for SIGINT and 143 for SIGTERM', () => {
  assert.equal(new Interrupted('SIGINT').exitCode, ExitCode.INTERRUPTED);
  assert.equal(new Interrupted('SIGTERM').exitCode, ExitCode.TERMINATED);
  assert.equal(new Interrupted('SIGINT').message, 'interrupted by SIGINT');
});

test('raceAbort resolves with the work when no signal comes', async () => {
  const c = new AbortController();
  assert.equal(await raceAbort(Promise.resolve(7), c.signal), 7);
});

test('raceAbort rejects at once on the signal, and the late failure of the work is swallowed', async () => {
  const c = new AbortController();
  let failWork: (e: Error) => void = () => undefined;
  const work = new Promise<number>((_, reject) => (failWork = reject));
  const raced = raceAbort(work, c.signal);
  c.abort('SIGTERM');
  await assert.rejects(raced, (e: unknown) => e instanceof Interrupted && e.signalName === 'SIGTERM');
  // Would be an unhandled rejection (and fail the test run) if raceAbort did not swallow it.
  failWork(new Error('worker killed by the same Ctrl-C'));
  await new Promise((r) => setImmediate(r));
});

test('a work failure after the signal is reported as the interruption, not as the failure', async () => {
  const c = new AbortController();
  let failWork: (e: Error) => void = () => undefined;
  const work = new Promise<number>((_, reject) => (failWork = reject));
  const raced = raceAbort(work, c.signal);
  // The failure arrives first in the same tick as the abort: workers die from the terminal's SIGINT.
  c.signal.addEventListener('abort', () => failWork(new Error('child exited')));
  c.abort('SIGINT');
  await assert.rejects(raced, Interrupted);
});

test('a work failure without a signal passes through unchanged', async () => {
  const c = new AbortController();
  const boom = new Error('boom');
  await assert.rejects(raceAbort(Promise.reject(boom), c.signal), (e) => e === boom);
});

test('an already aborted signal rejects without waiting', async () => {
  const c = new AbortController();
  c.abort('SIGINT');
  await assert.rejects(raceAbort(new Promise<never>(() => undefined), c.signal), Interrupted);
  assert.throws(() => throwIfAborted(c.signal), Interrupted);
  assert.doesNotThrow(() => throwIfAborted(new AbortController().signal));
});
