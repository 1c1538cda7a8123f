// A real `ringlog-drain` process for a test, and the checks every test makes of its output.
//
// The drain binary is the one `cargo build --release` made: RINGLOG_DRAIN, or
// <repo>/target/release/ringlog-drain. A missing binary fails the test that needs it (it is
// never skipped silently).
'use strict'
const { spawn } = require('node:child_process')
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const { Writer } = require('..')

const DRAIN = process.env.RINGLOG_DRAIN ||
  path.resolve(__dirname, '..', '..', 'target', 'release', 'ringlog-drain')

/** A ring name no other test (or test run) uses. */
function uniqueRing (label) {
  return `node-${label}-${process.pid}-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 8)}`
}

/** Polls `condition` every few ms until it holds; throws after `timeoutMs`. */
async function until (what, condition, timeoutMs = 30000) {
  const deadline = Date.now() + timeoutMs
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise(resolve => setTimeout(resolve, 5))
  }
}

/**
 * Starts `ringlog-drain --ring RING --out FILE --format raw|text|json [--capacity C]` and waits until it
 * holds the ring. `stop()` sends SIGTERM (the drain writes everything committed, then exits
 * 0), removes the ring, and returns the output's lines and whether the drain kept its spare link.
 */
async function startDrain (ring, { capacity, format = 'raw' } = {}) {
  if (!fs.existsSync(DRAIN)) {
    throw new Error(`ringlog-drain not found at ${DRAIN}: run cargo build --release first, or set RINGLOG_DRAIN`)
  }
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ringlog-node-'))
  const out = path.join(dir, 'out.log')
  const args = ['--ring', ring, '--out', out, '--format', format]
  if (capacity) args.push('--capacity', String(capacity))
  const child = spawn(DRAIN, args, { stdio: ['ignore', 'ignore', 'pipe'] })
  let stderr = ''
  child.stderr.on('data', d => { stderr += d })
  const exited = new Promise(resolve => child.on('exit', (code, signal) => resolve({ code, signal })))
  let probe
  await until(`ringlog-drain to hold ring ${ring}`, () => {
    if (child.exitCode !== null) throw new Error(`ringlog-drain exited early: ${stderr}`)
    try {
      probe = probe || new Writer(ring, { create: false })
      return probe.drainAlive()
    } catch (err) {
      if (err.code === 'RINGLOG_NOT_FOUND') return false
      throw err
    }
  })
  probe.close()
  return {
    out,
    child,
    alive: () => child.exitCode === null && child.signalCode === null,
    async stop () {
      child.kill('SIGTERM')
      const { code, signal } = await exited
      if (code !== 0) throw new Error(`ringlog-drain exited with ${code ?? signal}: ${stderr}`)
      fs.rmSync(`/dev/shm/ringlog-${ring}`, { force: true })
      // The spare link a drain keeps when it stops while producers are still attached (this
      // test process's own open writers, say): reported, then removed.
      const spare = `/dev/shm/.ringlog-${ring}.drain`
      const spareKept = fs.existsSync(spare)
      fs.rmSync(spare, { force: true })
      const text = fs.readFileSync(out, 'utf8')
      fs.rmSync(dir, { recursive: true, force: true })
      return { lines: text.split('\n').slice(0, -1), text, stderr, spareKept }
    }
  }
}

/**
 * Checks the drain's output lines: each a whole JSON record `{ w, i, n, pad }` whose `pad`
 * has `n` characters (a torn or interleaved line fails to parse or to match), counted per
 * writer `w`. Lines that are not JSON records are returned as `notices` (the drain's own
 * lines, e.g. a skipped abandoned claim). Returns { seen: Map<w, Map<i, count>>, notices }.
 */
function tally (lines, recordOf = line => JSON.parse(line)) {
  const seen = new Map()
  const notices = []
  for (const line of lines) {
    if (!line.startsWith('{')) {
      notices.push(line)
      continue
    }
    const record = recordOf(line)
    if (typeof record.pad !== 'string' || record.pad.length !== record.n) {
      throw new Error(`torn record: pad of ${record.pad && record.pad.length} chars, expected ${record.n}`)
    }
    if (!seen.has(record.w)) seen.set(record.w, new Map())
    const mine = seen.get(record.w)
    mine.set(record.i, (mine.get(record.i) || 0) + 1)
  }
  return { seen, notices }
}

/** Asserts writer `w` has records 0..count-1, each exactly once. */
function assertExactlyOnce (assert, seen, w, count) {
  const mine = seen.get(w) || new Map()
  const missing = []
  const duplicated = []
  for (let i = 0; i < count; i++) {
    const n = mine.get(i) || 0
    if (n === 0) missing.push(i)
    if (n > 1) duplicated.push(i)
  }
  assert.deepStrictEqual({ w, missing: missing.slice(0, 10), duplicated: duplicated.slice(0, 10), extra: mine.size - count + missing.length },
    { w, missing: [], duplicated: [], extra: 0 })
}

/** The size of record i in the size mix the cluster tests use: mostly ~100 B, some 64 KiB and 1 MiB. */
function padSize (i) {
  if (i % 500 === 499) return 1 << 20
  if (i % 50 === 49) return 64 << 10
  return 60 + (i % 40)
}

module.exports = { DRAIN, uniqueRing, until, startDrain, tally, assertExactlyOnce, padSize }
