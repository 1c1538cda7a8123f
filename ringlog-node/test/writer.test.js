// The Writer API against a real drain, and each error for its bad input: a JS Error with the
// shared status `code` and `status` and the library's message, never a crash; nothing written
// before or after the bad call is lost.
'use strict'
const test = require('node:test')
const assert = require('node:assert')
const { spawn, spawnSync } = require('node:child_process')
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const { Writer, status } = require('..')
const { DRAIN, uniqueRing, startDrain, until } = require('./drain.js')

/** Asserts `fn` throws a ringlog Error with `code` and a message matching `message`. */
function throwsRinglog (fn, code, message) {
  assert.throws(fn, err => {
    assert.ok(err instanceof Error, 'an Error')
    assert.strictEqual(err.code, code)
    assert.strictEqual(err.status, status[code])
    assert.match(err.message, message)
    return true
  })
}

function tempPath (name) {
  return path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'ringlog-node-')), name)
}

test('the status table is the shared one', () => {
  assert.deepStrictEqual(status, {
    RINGLOG_OK: 0,
    RINGLOG_NULL_ARGUMENT: 1,
    RINGLOG_BAD_NAME: 2,
    RINGLOG_BAD_ARGUMENT: 3,
    RINGLOG_NOT_FOUND: 4,
    RINGLOG_NOT_A_RING: 5,
    RINGLOG_VERSION_MISMATCH: 6,
    RINGLOG_PERMISSION: 7,
    RINGLOG_NO_SPACE: 8,
    RINGLOG_IO: 9,
    RINGLOG_TOO_LARGE: 10,
    RINGLOG_DROPPED: 11,
    RINGLOG_WOULD_DEADLOCK: 12,
    RINGLOG_CLOSED: 13,
    RINGLOG_PANIC: 14
  })
})

test('write, writeRecord and writeLine reach the drain as one record each, strings and Buffers', async () => {
  const ring = uniqueRing('api')
  const drain = await startDrain(ring)
  const w = new Writer(ring)
  assert.strictEqual(w.ring, ring)
  assert.strictEqual(w.maxRecord, 1 << 20)
  assert.strictEqual(w.drainAlive(), true)
  assert.strictEqual(w.write('plain string'), true)
  assert.strictEqual(w.write(Buffer.from('a Buffer')), true)
  assert.strictEqual(w.write(new TextEncoder().encode('a Uint8Array')), true)
  assert.strictEqual(w.write('naïve ünïcödé ✓ 🚀'), true)
  assert.strictEqual(w.write('lone surrogate \ud800 replaced'), true)
  assert.strictEqual(w.writeRecord('warn', 'svc.db', 'with level and target'), true)
  assert.strictEqual(w.writeRecord(1, 'svc', Buffer.from('numeric level')), true)
  assert.strictEqual(w.writeLine(3, 'a line\n'), true)
  assert.strictEqual(w.write(''), true)
  const multi = 'first\nsecond'
  assert.strictEqual(w.write(multi), true)
  assert.deepStrictEqual(w.stats(), { written: 10, dropped: 0, blockedMs: 0 })
  w.close()
  const { text } = await drain.stop()
  assert.strictEqual(text, [
    'plain string', 'a Buffer', 'a Uint8Array', 'naïve ünïcödé ✓ 🚀', 'lone surrogate \ufffd replaced',
    // raw output: the message only (level and target are for the text and json formats)
    'with level and target', 'numeric level', 'a line', '', 'first\nsecond', ''
  ].join('\n'))
})

test('bad ring names: RINGLOG_BAD_NAME', () => {
  throwsRinglog(() => new Writer('bad name!'), 'RINGLOG_BAD_NAME', /invalid ring name "bad name!"/)
  throwsRinglog(() => new Writer(''), 'RINGLOG_BAD_NAME', /invalid ring name/)
  throwsRinglog(() => new Writer('x'.repeat(65)), 'RINGLOG_BAD_NAME', /1 to 64 characters/)
  throwsRinglog(() => new Writer(42), 'RINGLOG_BAD_NAME', /ring must be a string/)
  throwsRinglog(() => new Writer(), 'RINGLOG_BAD_NAME', /ring must be a string/)
})

test('bad options: RINGLOG_BAD_ARGUMENT, and nothing is created', () => {
  const ring = uniqueRing('badopt')
  throwsRinglog(() => new Writer(ring, { capacity: 1000 }), 'RINGLOG_BAD_ARGUMENT', /power of two/)
  throwsRinglog(() => new Writer(ring, { capacity: -4096 }), 'RINGLOG_BAD_ARGUMENT', /option capacity/)
  throwsRinglog(() => new Writer(ring, { capacity: '12 parsecs' }), 'RINGLOG_BAD_ARGUMENT', /option capacity/)
  throwsRinglog(() => new Writer(ring, { policy: 'sometimes' }), 'RINGLOG_BAD_ARGUMENT', /option policy/)
  throwsRinglog(() => new Writer(ring, { policy: -5 }), 'RINGLOG_BAD_ARGUMENT', /option policy/)
  throwsRinglog(() => new Writer(ring, { create: 'yes' }), 'RINGLOG_BAD_ARGUMENT', /option create/)
  throwsRinglog(() => new Writer(ring, { mode: 'rw' }), 'RINGLOG_BAD_ARGUMENT', /option mode/)
  throwsRinglog(() => new Writer(ring, { path: 7 }), 'RINGLOG_BAD_ARGUMENT', /option path/)
  throwsRinglog(() => new Writer(ring, { capcity: 1 << 20 }), 'RINGLOG_BAD_ARGUMENT', /unknown option 'capcity': a Writer takes capacity, maxRecord, policy, drainGraceMs, create, path, mode/)
  throwsRinglog(() => new Writer(ring, 'drop'), 'RINGLOG_BAD_ARGUMENT', /options must be an object/)
  assert.strictEqual(fs.existsSync(`/dev/shm/ringlog-${ring}`), false)
})

test('a missing ring with create: false: RINGLOG_NOT_FOUND', () => {
  const ring = uniqueRing('missing')
  throwsRinglog(() => new Writer(ring, { create: false }), 'RINGLOG_NOT_FOUND', /not found .* start `ringlog-drain --ring/)
})

test('a file that is no ring, or another capacity: RINGLOG_NOT_A_RING', () => {
  const garbage = tempPath('garbage')
  fs.writeFileSync(garbage, Buffer.alloc(1 << 16, 7))
  throwsRinglog(() => new Writer('g', { path: garbage }), 'RINGLOG_NOT_A_RING', /not a ringlog segment/)
  fs.writeFileSync(garbage, '')
  throwsRinglog(() => new Writer('g', { path: garbage }), 'RINGLOG_NOT_A_RING', /truncated/)
  const ring = uniqueRing('capacity')
  const first = new Writer(ring, { capacity: 1 << 16 })
  throwsRinglog(() => new Writer(ring, { capacity: 1 << 17 }), 'RINGLOG_NOT_A_RING', /already exists with capacity 65536/)
  first.close()
  fs.rmSync(`/dev/shm/ringlog-${ring}`)
})

test('a ring of another layout version: RINGLOG_VERSION_MISMATCH', () => {
  const file = tempPath('ring')
  new Writer('v', { path: file, capacity: 1 << 16 }).close()
  const fd = fs.openSync(file, 'r+')
  const version = Buffer.alloc(4)
  version.writeUInt32LE(99)
  fs.writeSync(fd, version, 0, 4, 8) // Header.version, after the 8-byte magic
  fs.closeSync(fd)
  throwsRinglog(() => new Writer('v', { path: file }), 'RINGLOG_VERSION_MISMATCH', /layout version 99/)
})

test('a ring this user may not open: RINGLOG_PERMISSION', () => {
  const file = tempPath('ring')
  new Writer('p', { path: file, capacity: 1 << 16 }).close()
  // The probe loads a copy of the package from a directory anyone may read (the repository may
  // sit where another user cannot).
  const pkg = fs.mkdtempSync(path.join(os.tmpdir(), 'ringlog-node-pkg-'))
  for (const f of ['index.js', 'ringlog.node']) fs.copyFileSync(path.join(__dirname, '..', f), path.join(pkg, f))
  const probe = `try { new (require(${JSON.stringify(pkg)}).Writer)('p', { path: ${JSON.stringify(file)} }); console.log('opened') }` +
    ' catch (e) { console.log(JSON.stringify({ code: e.code, status: e.status, message: e.message })) }'
  let run
  if (process.getuid() === 0) {
    // root reads anything: ask as nobody, who may enter the directories but not open the 0600 file.
    for (const dir of [pkg, path.dirname(file)]) fs.chmodSync(dir, 0o755)
    run = spawnSync(process.execPath, ['-e', probe], { uid: 65534, gid: 65534, encoding: 'utf8', cwd: pkg })
  } else {
    fs.chmodSync(file, 0)
    run = spawnSync(process.execPath, ['-e', probe], { encoding: 'utf8' })
  }
  fs.rmSync(pkg, { recursive: true, force: true })
  assert.strictEqual(run.status, 0, run.stderr)
  const err = JSON.parse(run.stdout)
  assert.strictEqual(err.code, 'RINGLOG_PERMISSION')
  assert.strictEqual(err.status, 7)
  // The library's sentence (what to check) and its cause (the OS error), in either order.
  assert.match(err.message, /check the file's owner and mode/)
  assert.match(err.message, /Permission denied/)
})

test('no room for the ring on its filesystem: RINGLOG_NO_SPACE, nothing left behind', t => {
  // A 1 MiB tmpfs of our own (mounting needs root; anyone else gets a counted skip).
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ringlog-node-small-'))
  const mount = spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', dir], { encoding: 'utf8' })
  if (mount.status !== 0) {
    fs.rmSync(dir, { recursive: true, force: true })
    if (process.getuid() === 0) assert.fail(`root, yet cannot mount a small tmpfs: ${mount.stderr}`)
    t.skip(`not root, cannot mount a small tmpfs (${mount.stderr.trim()})`)
    return
  }
  try {
    const file = path.join(dir, 'ring')
    throwsRinglog(() => new Writer('big', { path: file, capacity: '4M' }), 'RINGLOG_NO_SPACE', /no space to create ring/)
    assert.deepStrictEqual(fs.readdirSync(dir), [])
  } finally {
    spawnSync('umount', [dir])
    fs.rmSync(dir, { recursive: true, force: true })
  }
})

test('any other OS error: RINGLOG_IO with the OS message', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ringlog-node-'))
  throwsRinglog(() => new Writer('d', { path: dir }), 'RINGLOG_IO', /Is a directory/)
  fs.rmSync(dir, { recursive: true, force: true })
})

test('bad write arguments throw, and every good record before and after arrives', async () => {
  const ring = uniqueRing('badwrite')
  const drain = await startDrain(ring, { capacity: 1 << 16 })
  const w = new Writer(ring)
  assert.strictEqual(w.maxRecord, 1 << 14)
  assert.strictEqual(w.write('before'), true)
  throwsRinglog(() => w.write(42), 'RINGLOG_BAD_ARGUMENT', /string or a Buffer/)
  throwsRinglog(() => w.write({ toString: () => 'x' }), 'RINGLOG_BAD_ARGUMENT', /string or a Buffer/)
  throwsRinglog(() => w.write(), 'RINGLOG_BAD_ARGUMENT', /string or a Buffer/)
  throwsRinglog(() => w.write('x'.repeat((1 << 14) + 1)), 'RINGLOG_TOO_LARGE', /record of 16385 bytes is larger than the ring's max record size of 16384 bytes/)
  throwsRinglog(() => w.write('é'.repeat(10000)), 'RINGLOG_TOO_LARGE', /record of 20000 bytes/)
  throwsRinglog(() => w.write(Buffer.alloc(1 << 15)), 'RINGLOG_TOO_LARGE', /record of 32768 bytes/)
  throwsRinglog(() => w.writeRecord('info', 't'.repeat(9000), 'm'.repeat(9000)), 'RINGLOG_TOO_LARGE', /record of 18000 bytes/)
  throwsRinglog(() => w.writeRecord('loud', 't', 'm'), 'RINGLOG_BAD_ARGUMENT', /level must be/)
  throwsRinglog(() => w.writeRecord(9, 't', 'm'), 'RINGLOG_BAD_ARGUMENT', /level must be/)
  throwsRinglog(() => w.writeRecord(2.5, 't', 'm'), 'RINGLOG_BAD_ARGUMENT', /level must be/)
  throwsRinglog(() => w.writeRecord('info', Buffer.from('t'), 'm'), 'RINGLOG_BAD_ARGUMENT', /target must be a string/)
  throwsRinglog(() => w.writeLine('loud', 'm'), 'RINGLOG_BAD_ARGUMENT', /level must be/)
  assert.strictEqual(w.write('x'.repeat(1 << 14)), true)
  assert.strictEqual(w.write('after'), true)
  assert.strictEqual(w.stats().written, 3)
  w.close()
  const { lines } = await drain.stop()
  assert.deepStrictEqual(lines, ['before', 'x'.repeat(1 << 14), 'after'])
})

test('a closed writer: RINGLOG_CLOSED on every call, close twice is harmless', () => {
  const ring = uniqueRing('closed')
  const w = new Writer(ring, { capacity: 1 << 16, policy: 'drop' })
  w.close()
  w.close()
  assert.strictEqual(w.closed, true)
  throwsRinglog(() => w.write('x'), 'RINGLOG_CLOSED', /closed/)
  throwsRinglog(() => w.writeRecord('info', 't', 'x'), 'RINGLOG_CLOSED', /closed/)
  throwsRinglog(() => w.writeLine(3, 'x'), 'RINGLOG_CLOSED', /closed/)
  throwsRinglog(() => w.stats(), 'RINGLOG_CLOSED', /closed/)
  throwsRinglog(() => w.drainAlive(), 'RINGLOG_CLOSED', /closed/)
  fs.rmSync(`/dev/shm/ringlog-${ring}`)
})

test('policy drop on a full ring: write returns false, counted, never throws', () => {
  const ring = uniqueRing('drop')
  const w = new Writer(ring, { capacity: 1 << 16, policy: 'drop' })
  let written = 0
  while (w.write('y'.repeat(100))) written++
  assert.ok(written > 0)
  assert.strictEqual(w.write('y'.repeat(100)), false)
  assert.deepStrictEqual(w.stats(), { written, dropped: 2, blockedMs: 0 })
  w.close()
  fs.rmSync(`/dev/shm/ringlog-${ring}`)
})

test('policy block with no drain: a full ring drops after the grace period instead of blocking forever', () => {
  const ring = uniqueRing('block')
  const w = new Writer(ring, { capacity: 1 << 16 })
  // No drain: each write on the full ring waits out the grace period once, then drops.
  let written = 0
  while (w.write('z'.repeat(100))) written++
  assert.ok(written > 0)
  const stats = w.stats()
  assert.strictEqual(stats.written, written)
  assert.strictEqual(stats.dropped, 1)
  assert.ok(stats.blockedMs > 0)
  w.close()
  fs.rmSync(`/dev/shm/ringlog-${ring}`)
})

test('policy block with drainGraceMs: the grace period is the one asked for', () => {
  const ring = uniqueRing('grace')
  throwsRinglog(() => new Writer(ring, { drainGraceMs: -1 }), 'RINGLOG_BAD_ARGUMENT', /option drainGraceMs/)
  const w = new Writer(ring, { capacity: 1 << 16, drainGraceMs: 5 })
  while (w.write('z'.repeat(100)));
  const stats = w.stats()
  assert.strictEqual(stats.dropped, 1)
  assert.ok(stats.blockedMs > 0)
  w.close()
  fs.rmSync(`/dev/shm/ringlog-${ring}`)
})

test('policy <ms> (block for a while, then drop) with no drain', () => {
  const ring = uniqueRing('blockfor')
  const w = new Writer(ring, { capacity: 1 << 16, policy: 20 })
  while (w.write('z'.repeat(100)));
  assert.strictEqual(w.write('z'.repeat(100)), false)
  const stats = w.stats()
  assert.strictEqual(stats.dropped, 2)
  assert.ok(stats.blockedMs > 0)
  w.close()
  fs.rmSync(`/dev/shm/ringlog-${ring}`)
})

test('the event loop keeps turning around a blocked write: a timer set before it still fires', async () => {
  const ring = uniqueRing('loop')
  const w = new Writer(ring, { capacity: 1 << 16, policy: 50 })
  const fired = new Promise(resolve => setTimeout(resolve, 1))
  while (w.write('z'.repeat(100)));
  await fired
  w.close()
  fs.rmSync(`/dev/shm/ringlog-${ring}`)
})

/**
 * Runs `script` in a child `node` (with `nodeArgs`, and `ring` and the drain's path as its
 * arguments) that gives its writer's slot back, says one line, then lives on until its stdin
 * closes. Asserts the line is `expected`; that `stat` shows none of the child's slots attached
 * while `drain` runs; that `drain`, stopped, keeps no spare link (it would keep the segment's
 * memory in /dev/shm after everyone exits); and that the log holds `messages`.
 */
async function assertGivenBack (ring, drain, { nodeArgs = [], script, expected, messages }) {
  const child = spawn(process.execPath, [...nodeArgs, '-e', script, ring, DRAIN],
    { stdio: ['pipe', 'pipe', 'inherit'] })
  const exited = new Promise(resolve => child.on('exit', code => resolve(code)))
  let said = ''
  child.stdout.on('data', d => { said += d })
  try {
    await until('the child to say how it went', () => said.endsWith('\n') || child.exitCode !== null)
    assert.strictEqual(said, expected)
    const stat = spawnSync(DRAIN, ['stat', '--ring', ring, '--json'], { encoding: 'utf8' })
    assert.strictEqual(stat.status, 0, stat.stderr)
    const attached = JSON.parse(stat.stdout).producers.filter(p => p.pid === child.pid && p.alive)
    assert.deepStrictEqual(attached, [], 'attached while the drain runs')
    const { lines, spareKept, stderr } = await drain.stop()
    assert.strictEqual(spareKept, false, `the drain kept its spare link: ${stderr}`)
    assert.deepStrictEqual(lines.map(l => JSON.parse(l).msg), messages)
  } finally {
    child.stdin.end()
  }
  assert.strictEqual(await exited, 0)
}

const PACKAGE = JSON.stringify(path.resolve(__dirname, '..'))

test('a closed writer of a live process is not attached, and a stopping drain keeps no spare link', async () => {
  const ring = uniqueRing('closed')
  const drain = await startDrain(ring, { format: 'json' })
  const script = `const w = new (require(${PACKAGE}).Writer)(process.argv[1])
w.write('before close')
w.close()
console.log('closed')
process.stdin.resume()`
  await assertGivenBack(ring, drain, { script, expected: 'closed\n', messages: ['before close'] })
})

test('a writer the garbage collector takes gives its slot back, and a stopping drain keeps no spare link', async () => {
  const ring = uniqueRing('collected')
  const drain = await startDrain(ring, { format: 'json' })
  // Drops every reference to its writer, then collects garbage until `stat` shows its slot
  // given back (a bounded number of rounds), and says whether it was.
  const script = `const { spawnSync } = require('node:child_process')
const [ring, drain] = process.argv.slice(1)
const detached = () => {
  const stat = spawnSync(drain, ['stat', '--ring', ring, '--json'], { encoding: 'utf8' })
  if (stat.status !== 0) throw new Error(stat.stderr)
  const mine = JSON.parse(stat.stdout).producers.filter(p => p.pid === process.pid)
  return mine.length === 1 && mine[0].state === 'detached' && !mine[0].alive
}
let w = new (require(${PACKAGE}).Writer)(ring)
w.write('before the writer is collected')
const writer = new WeakRef(w)
w = null
;(async () => {
  let released = false
  for (let round = 1; round <= 50 && !released; round++) {
    global.gc()
    // Finalizers run in tasks of their own, after the collection.
    await new Promise(resolve => setImmediate(resolve))
    released = detached()
  }
  console.log(released ? 'released' : writer.deref() === undefined ? 'collected, not released' : 'not collected')
  process.stdin.resume()
})()`
  await assertGivenBack(ring, drain, {
    nodeArgs: ['--expose-gc'],
    script,
    expected: 'released\n',
    messages: ['before the writer is collected']
  })
})
