'use strict';
// Runs every compiled test file (dist/test/**/*.test.js) with node's test
// runner. Suites that need root skip without it, but fail when CI is set
// (test/e2e/require-root.ts).
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

function find(dir) {
  if (!fs.existsSync(dir)) return [];
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name);
    return e.isDirectory() ? find(p) : e.name.endsWith('.test.js') ? [p] : [];
  });
}

const root = path.join(__dirname, '..', 'dist', 'test');
const only = process.argv.slice(2);
const files = (only.length ? only.flatMap((d) => find(path.join(root, d))) : find(root)).sort();
if (files.length === 0) {
  console.error('no test files found under dist/test');
  process.exit(1);
}
const r = spawnSync(process.execPath, ['--test', '--test-concurrency=1', ...files], { stdio: 'inherit' });
process.exit(r.status ?? 1);
