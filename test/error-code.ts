/**
 * Shared test helpers for typed errors: what a call throws, as a code to
 * compare with `assert.equal`, and a predicate for `assert.throws` /
 * `assert.rejects`. Anything but a `VectunError` fails the test at once.
 */
import assert from 'node:assert/strict';
import { VectunError } from '../src/errors.js';

/** The `VectunError` code `fn` throws, or `'no error'`; any other throw fails the assertion. */
export function errorCode(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    assert.ok(e instanceof VectunError, `expected a VectunError, got ${String(e)}`);
    return e.code;
  }
  return 'no error';
}

/** For `assert.throws(fn, isCode(code))` and `assert.rejects`: a `VectunError` with exactly `code`. */
export function isCode(code: string): (err: unknown) => boolean {
  return (err: unknown) => {
    assert.ok(err instanceof VectunError, `expected a VectunError, got ${String(err)}`);
    assert.equal(err.code, code);
    return true;
  };
}
