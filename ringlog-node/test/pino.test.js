// The pino destination and the winston transport in one process, against a real drain:
// levels stamped on each record, bad input reported as 'error', nothing lost around it.
'use strict'
const test = require('node:test')
const assert = require('node:assert')
const pino = require('pino')
const winston = require('winston')
const ringlog = require('..')
const RinglogTransport = require('ringlog/winston')
const { uniqueRing, startDrain } = require('./drain.js')

/** The drain's json format: one object per record with its level and message. */
function records (lines) {
  return lines.map(line => JSON.parse(line))
}

test('pino: one record per log call, level stamped from pino, no trailing newline kept', async () => {
  const ring = uniqueRing('pino')
  const drain = await startDrain(ring, { format: 'json' })
  const dest = ringlog.destination({ ring })
  const log = pino({ level: 'trace' }, dest)
  log.trace('t')
  log.debug('d')
  log.info({ user: 'ann' }, 'i')
  log.warn('w')
  log.error(new Error('boom'), 'e')
  log.fatal('f')
  log.child({ module: 'db' }).info('child line')
  assert.strictEqual(dest.stats().written, 7)
  assert.strictEqual(dest.drainAlive(), true)
  await new Promise(resolve => log.flush(resolve))
  const got = records((await drain.stop()).lines)
  assert.deepStrictEqual(got.map(r => r.level), ['TRACE', 'DEBUG', 'INFO', 'WARN', 'ERROR', 'ERROR', 'INFO'])
  const messages = got.map(r => JSON.parse(r.msg))
  assert.deepStrictEqual(messages.map(m => m.msg), ['t', 'd', 'i', 'w', 'e', 'f', 'child line'])
  assert.strictEqual(messages[2].user, 'ann')
  assert.strictEqual(messages[4].err.message, 'boom')
  assert.strictEqual(messages[6].module, 'db')
  for (const r of got) assert.ok(!r.msg.endsWith('\n'))
})

test('pino: a line above the max record is an error event and a notice in the log, the lines around it arrive', async () => {
  const ring = uniqueRing('pinobig')
  const drain = await startDrain(ring, { capacity: 1 << 16 })
  const dest = ringlog.destination({ ring })
  const errors = []
  dest.on('error', err => errors.push(err))
  const log = pino(dest)
  log.info('before')
  log.info('x'.repeat(1 << 15))
  log.info('after')
  assert.strictEqual(errors.length, 1)
  assert.strictEqual(errors[0].code, 'RINGLOG_TOO_LARGE')
  assert.strictEqual(errors[0].status, 10)
  assert.match(errors[0].message, /max record size of 16384 bytes/)
  // With no listener, the error reaches the caller, as with any Node stream.
  const bare = pino(ringlog.destination({ ring }))
  assert.throws(() => bare.info('y'.repeat(1 << 15)), { code: 'RINGLOG_TOO_LARGE' })
  const { lines } = await drain.stop()
  assert.strictEqual(lines.length, 4)
  assert.deepStrictEqual([lines[0], lines[2]].map(line => JSON.parse(line).msg), ['before', 'after'])
  for (const notice of [lines[1], lines[3]]) {
    assert.match(notice, /^ringlog: a pino line was not logged: record of \d+ bytes is larger than the ring's max record size of 16384 bytes/)
  }
})

test('pino: end() closes the destination, later lines are errors, destination() checks its options', async () => {
  const ring = uniqueRing('pinoend')
  const dest = ringlog.destination(ring)
  const log = pino(dest)
  const finished = new Promise(resolve => dest.on('finish', resolve))
  dest.end()
  await finished
  assert.strictEqual(dest.writable, false)
  assert.throws(() => log.info('late'), { code: 'RINGLOG_CLOSED' })
  assert.throws(() => ringlog.destination({ ring, polcy: 'drop' }), { code: 'RINGLOG_BAD_ARGUMENT' })
  assert.throws(() => ringlog.destination({ ring: 'no way' }), { code: 'RINGLOG_BAD_NAME' })
  assert.throws(() => ringlog.destination(), { code: 'RINGLOG_BAD_ARGUMENT' })
  require('node:fs').rmSync(`/dev/shm/ringlog-${ring}`)
})

test('winston: one record per entry with its level, formatted by winston', async () => {
  const ring = uniqueRing('winston')
  const drain = await startDrain(ring, { format: 'json' })
  const transport = new RinglogTransport({ ring, level: 'debug', format: winston.format.json() })
  const logger = winston.createLogger({ levels: winston.config.npm.levels, transports: [transport] })
  logger.error('e', { code: 7 })
  logger.warn('w')
  logger.info('i')
  logger.http('h')
  logger.debug('d')
  logger.silly('not at this level')
  assert.strictEqual(transport.writer.stats().written, 5)
  const got = records((await drain.stop()).lines)
  assert.deepStrictEqual(got.map(r => r.level), ['ERROR', 'WARN', 'INFO', 'INFO', 'DEBUG'])
  assert.deepStrictEqual(got.map(r => JSON.parse(r.msg).message), ['e', 'w', 'i', 'h', 'd'])
  assert.strictEqual(JSON.parse(got[0].msg).code, 7)
})

test('winston: an entry above the max record is a warning and a notice in the log; the transport goes on', async () => {
  const ring = uniqueRing('winstonbig')
  const drain = await startDrain(ring, { capacity: 1 << 16 })
  const transport = new RinglogTransport({ ring })
  const logger = winston.createLogger({ transports: [transport] })
  const warnings = []
  logger.on('warn', err => warnings.push(err))
  logger.on('error', err => assert.fail(err))
  logger.info('before')
  logger.info('x'.repeat(1 << 15))
  logger.info('after')
  assert.deepStrictEqual(warnings.map(e => [e.code, e.status]), [['RINGLOG_TOO_LARGE', 10]])
  const { lines } = await drain.stop()
  assert.strictEqual(lines.length, 3)
  assert.strictEqual(JSON.parse(lines[0]).message, 'before')
  assert.match(lines[1], /^ringlog: a winston entry was not logged: record of 32797 bytes is larger than the ring's max record size of 16384 bytes/)
  assert.strictEqual(JSON.parse(lines[2]).message, 'after')
})
