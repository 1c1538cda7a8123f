// The TypeScript declarations compile against the documented API (tsc --noEmit --strict).
'use strict'
const test = require('node:test')
const assert = require('node:assert')
const { spawnSync } = require('node:child_process')
const path = require('node:path')

test('index.d.ts and winston.d.ts type the documented API', () => {
  const tsc = require.resolve('typescript/bin/tsc')
  const run = spawnSync(process.execPath, [tsc, '--noEmit', '--strict', '--module', 'node16',
    '--moduleResolution', 'node16', '--types', 'node', path.join(__dirname, 'fixtures', 'types-check.ts')],
  { encoding: 'utf8', cwd: path.join(__dirname, '..') })
  assert.strictEqual(run.status, 0, run.stdout + run.stderr)
})
