// `require('ringlog/winston')`: a winston transport writing each log entry as one ringlog
// record, synchronously, with its level:
//
//   const RinglogTransport = require('ringlog/winston')
//   winston.createLogger({ transports: [new RinglogTransport({ ring: 'svc' })] })
//
// Options: `ring` and the Writer options (capacity, maxRecord, policy, drainGraceMs, create,
// path, mode) go to
// the Writer; the rest (level, format, silent, handleExceptions...) to winston-transport.
// An entry the ring cannot take (above its max record) must not end the transport: an 'error'
// event would make winston unpipe and close it, losing every later entry. So the error is
// emitted as 'warn' (winston re-emits it on the logger: `logger.on('warn', err => ...)`) and a
// notice record saying what was not logged takes the entry's place in the log. A drop on a
// full ring is counted, not an error.
'use strict'
const path = require('node:path')
const { Writer } = require('./index.js')

const LEVEL = Symbol.for('level')
const MESSAGE = Symbol.for('message')
const WRITER_OPTIONS = ['capacity', 'maxRecord', 'policy', 'drainGraceMs', 'create', 'path', 'mode']

/**
 * winston-transport, from wherever the application installed winston. A local directory
 * dependency is linked, so node resolves from ringlog's own directory first; the
 * application's directories come next.
 */
function transportBase () {
  const from = [__dirname, require.main && path.dirname(require.main.filename), process.cwd()]
  for (const dir of from) {
    if (!dir) continue
    try {
      return require(require.resolve('winston-transport', { paths: [dir] }))
    } catch (_) {}
  }
  const err = new Error('ringlog/winston needs winston: npm install winston')
  err.code = 'MODULE_NOT_FOUND'
  throw err
}

/** winston level name -> ringlog level number (1 error ... 5 trace). */
const LEVELS = {
  emerg: 1, alert: 1, crit: 1, error: 1,
  warn: 2, warning: 2,
  notice: 3, info: 3, http: 3,
  verbose: 4, debug: 4,
  silly: 5, trace: 5
}

const Transport = transportBase()

class RinglogTransport extends Transport {
  constructor (options = {}) {
    const { ring, ...rest } = options
    const writerOptions = {}
    const transportOptions = {}
    for (const [key, value] of Object.entries(rest)) {
      (WRITER_OPTIONS.includes(key) ? writerOptions : transportOptions)[key] = value
    }
    super(transportOptions)
    this.name = 'ringlog'
    this.writer = new Writer(ring, writerOptions)
  }

  log (info, callback) {
    const message = info[MESSAGE] !== undefined ? info[MESSAGE] : JSON.stringify(info)
    const level = LEVELS[info[LEVEL]] || 0
    try {
      this.writer.writeRecord(level, '', message)
    } catch (err) {
      this.emit('warn', err)
      try {
        this.writer.writeRecord(1, 'ringlog', `ringlog: a winston entry was not logged: ${err.message}`)
      } catch (_) {
        // Closed: the 'warn' above is all that can be done.
      }
    }
    this.emit('logged', info)
    callback()
  }

  close () {
    this.writer.close()
  }
}

module.exports = RinglogTransport
module.exports.RinglogTransport = RinglogTransport
