/**
 * The addon loader (src/device/native.ts): node-gyp-build on a package root,
 * and ERR_TUN_NATIVE with what is missing when nothing there loads.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { loadBinding } from '../../src/device/native.js';
import { VectunError } from '../../src/errors.js';

test('loadBinding: no build and no matching prebuild -> ERR_TUN_NATIVE naming the platform and the fix', () => {
  const root = mkdtempSync(path.join(tmpdir(), 'vectun-load-'));
  try {
    writeFileSync(path.join(root, 'package.json'), '{"name":"vectun"}');
    // A prebuild for a platform this is not.
    mkdirSync(path.join(root, 'prebuilds', 'win32-ia32'), { recursive: true });
    writeFileSync(path.join(root, 'prebuilds', 'win32-ia32', 'vectun.node'), '');
    assert.throws(() => loadBinding(root), (err: unknown) => {
      assert.ok(err instanceof VectunError);
      assert.equal(err.code, 'ERR_TUN_NATIVE');
      assert.ok(err.message.includes(root));
      assert.match(err.message, new RegExp(`matches ${process.platform}-${process.arch} `));
      assert.match(err.message, /npm rebuild vectun/);
      assert.ok(err.cause instanceof Error, 'the loader error is kept as the cause');
      return true;
    });
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test('loadBinding: the package root loads (build/Release or the prebuild) and exposes the binding functions', () => {
  const b = loadBinding();
  for (const fn of ['tunOpen', 'tunNetns', 'nlOpen', 'readBatch', 'writeLists', 'pollCreate'] as const) assert.equal(typeof b[fn], 'function', fn);
  assert.equal(loadBinding(), b, 'cached');
});
