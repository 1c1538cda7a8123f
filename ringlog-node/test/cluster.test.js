// Cluster workers logging through pino into one real ringlog-drain: every record exactly once
// and untorn, whatever its size; a worker SIGKILLed mid-run harms neither the others nor the
// drain; process.exit() right after logging loses nothing.
'use strict'
const test = require('node:test')
const assert = require('node:assert')
const { spawn } = require('node:child_process')
const path = require('node:path')
const { uniqueRing, startDrain, tally, assertExactlyOnce, padSize } = require('./drain.js')
const { Writer } = require('..')

/** Runs a fixture; one still running after `limitMs` is killed and fails the test. */
function runNode (script, args, limitMs = 240000) {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [path.join(__dirname, 'fixtures', script), ...args.map(String)],
      { stdio: ['ignore', 'pipe', 'pipe'] })
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', d => { stdout += d })
    child.stderr.on('data', d => { stderr += d })
    const limit = setTimeout(() => {
      child.kill('SIGKILL')
      reject(new Error(`${script} still running after ${limitMs} ms: ${stderr}`))
    }, limitMs)
    child.on('error', reject)
    child.on('exit', (code, signal) => {
      clearTimeout(limit)
      resolve({ code, signal, stdout, stderr })
    })
  })
}

test('4 cluster workers through pino: every record exactly once and untorn, 64 KiB and 1 MiB lines included', async () => {
  const ring = uniqueRing('cluster')
  const capacity = 16 << 20
  const count = 1000
  const drain = await startDrain(ring, { capacity })
  const run = await runNode('cluster-pino.js', [ring, 4, count, capacity])
  assert.strictEqual(run.code, 0, run.stderr)
  const { lines } = await drain.stop()
  const { seen, notices } = tally(lines)
  assert.deepStrictEqual(notices, [])
  assert.deepStrictEqual([...seen.keys()].sort(), [1, 2, 3, 4])
  for (const w of [1, 2, 3, 4]) assertExactlyOnce(assert, seen, w, count)
  const sizes = lines.map(line => JSON.parse(line).n)
  assert.strictEqual(sizes.filter(n => n === 1 << 20).length, 4 * Math.floor(count / 500))
  assert.strictEqual(sizes.filter(n => n === 64 << 10).length, 4 * (Math.floor(count / 50) - Math.floor(count / 500)))
  assert.strictEqual(sizes.length, 4 * count)
  assert.ok(padSize(499) === 1 << 20)
})

test('a cluster worker SIGKILLed mid-run leaves the other workers and the drain unharmed', async () => {
  const ring = uniqueRing('kill')
  const count = 5000
  const drain = await startDrain(ring)
  const run = await runNode('cluster-kill.js', [ring, 4, count])
  assert.strictEqual(run.code, 0, run.stderr)
  const { victim } = JSON.parse(run.stdout)
  // The drain outlived the kill and still holds the ring.
  assert.ok(drain.alive())
  const probe = new Writer(ring, { create: false })
  assert.strictEqual(probe.drainAlive(), true)
  // It still takes records after the kill.
  assert.strictEqual(probe.write(JSON.stringify({ w: 'after', i: 0, n: 1, pad: 'a' })), true)
  probe.close()
  const { lines } = await drain.stop()
  const { seen, notices } = tally(lines)
  for (const w of [1, 2, 3, 4].filter(w => w !== victim)) assertExactlyOnce(assert, seen, w, count)
  assertExactlyOnce(assert, seen, 'after', 1)
  // The victim's records: at least the 2000 it reported, each once, a gapless prefix (it
  // writes them in order; only a record it was copying when killed may be skipped, and the
  // drain says so in a notice line).
  const mine = seen.get(victim)
  assert.ok(mine.size >= 2000, `victim wrote ${mine.size}`)
  const last = Math.max(...mine.keys())
  const gaps = []
  for (let i = 0; i <= last; i++) if (mine.get(i) !== 1) gaps.push(i)
  assert.ok(gaps.length <= 1, `victim's records missing or duplicated: ${gaps.slice(0, 10)}`)
  if (gaps.length === 1) assert.ok(notices.some(line => line.includes('abandoned')), notices.join('\n'))
  for (const line of notices) assert.match(line, /ringlog/)
})

test('process.exit() right after logging through pino loses nothing', async () => {
  const ring = uniqueRing('exit')
  const count = 20000
  const drain = await startDrain(ring)
  const run = await runNode('exit-right-after.js', [ring, count])
  assert.strictEqual(run.code, 0, run.stderr)
  const { lines } = await drain.stop()
  const { seen, notices } = tally(lines)
  assert.deepStrictEqual(notices, [])
  assertExactlyOnce(assert, seen, 'exit', count)
})
