// worker_threads: each thread opens its own Writer (the addon is context-aware) and every
// record of every thread reaches the drain exactly once; terminating a thread mid-run tears
// nothing.
'use strict'
const test = require('node:test')
const assert = require('node:assert')
const path = require('node:path')
const { Worker } = require('node:worker_threads')
const { Writer } = require('..')
const { uniqueRing, startDrain, tally, assertExactlyOnce } = require('./drain.js')

function runThread (workerData) {
  return new Promise((resolve, reject) => {
    const worker = new Worker(path.join(__dirname, 'fixtures', 'thread-writer.js'), { workerData })
    let stats
    worker.on('message', m => { stats = m })
    worker.on('error', reject)
    worker.on('exit', code => code === 0 ? resolve(stats) : reject(new Error(`thread exited with ${code}`)))
  })
}

test('4 worker threads and the main thread write into one drain: every record exactly once', async () => {
  const ring = uniqueRing('threads')
  const count = 5000
  const drain = await startDrain(ring)
  const main = new Writer(ring)
  const threads = [1, 2, 3, 4].map(w => runThread({ ring, w, count }))
  for (let i = 0; i < count; i++) {
    const n = 40 + (i % 200)
    main.writeRecord('info', 'main', JSON.stringify({ w: 0, i, n, pad: 'm'.repeat(n) }))
  }
  const stats = await Promise.all(threads)
  for (const s of stats) assert.deepStrictEqual(s, { written: count, dropped: 0, blockedMs: s.blockedMs })
  assert.strictEqual(main.stats().written, count)
  main.close()
  const { lines } = await drain.stop()
  const { seen, notices } = tally(lines)
  assert.deepStrictEqual(notices, [])
  for (const w of [0, 1, 2, 3, 4]) assertExactlyOnce(assert, seen, w, count)
})

test('a worker thread terminated mid-run leaves a gapless prefix of its records and the others whole', async () => {
  const ring = uniqueRing('terminate')
  const count = 3000
  const drain = await startDrain(ring)
  const endless = new Worker(path.join(__dirname, 'fixtures', 'thread-writer.js'),
    { workerData: { ring, w: 9, count: Infinity, report: 1000 } })
  const exited = new Promise(resolve => endless.on('exit', resolve))
  await new Promise((resolve, reject) => {
    endless.on('message', m => { if (m === 'wrote 1000') resolve() })
    endless.on('error', reject)
  })
  const others = [1, 2].map(w => runThread({ ring, w, count }))
  await endless.terminate()
  await exited
  await Promise.all(others)
  const { lines } = await drain.stop()
  const { seen, notices } = tally(lines)
  assert.deepStrictEqual(notices, [])
  for (const w of [1, 2]) assertExactlyOnce(assert, seen, w, count)
  const mine = seen.get(9)
  assert.ok(mine.size >= 1000)
  assertExactlyOnce(assert, seen, 9, mine.size)
})
