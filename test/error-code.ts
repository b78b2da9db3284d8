/**
 * Shared test helper: what a call throws, as a string to compare with
 * `assert.equal`, so a table of bad inputs can name the expected code.
 */
import { VectunError } from '../src/errors.js';

/** The `VectunError` code `fn` throws, `'no error'`, or a description of any other throw (so a test fails with it). */
export function errorCode(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    return e instanceof VectunError ? e.code : `not a VectunError: ${String(e)}`;
  }
  return 'no error';
}
