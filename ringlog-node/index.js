// ringlog for Node.js: log from every cluster worker (and worker thread) into one file through
// a shared-memory ring and one `ringlog-drain` process.
//
// This file owns the JavaScript surface: option checking for `Writer`, the pino destination,
// and the error objects JS raises itself. Writing is native (`ringlog.node`, see src/lib.rs):
// `Writer` extends the native class, so `w.write()` calls straight into Rust.
'use strict'
const { EventEmitter } = require('node:events')
const native = require('./ringlog.node')

/** Status name -> number, the table every ringlog binding shares. */
const status = Object.freeze(Object.fromEntries(
  Object.entries(native.statusCodes()).sort((a, b) => a[1] - b[1])))

function ringlogError (code, message) {
  const err = new Error(message)
  err.code = code
  err.status = status[code]
  return err
}

const WRITER_OPTIONS = ['capacity', 'maxRecord', 'policy', 'drainGraceMs', 'create', 'path', 'mode']
const SIZE = /^(\d+)\s*([kmg]?)(i?b)?$/i
const UNIT = { '': 1, k: 1 << 10, m: 1 << 20, g: 1 << 30 }

/** A byte count: a positive integer, or a string such as '16M' / '64KiB'. */
function size (name, value) {
  if (value === undefined) return undefined
  let bytes = value
  if (typeof value === 'string') {
    const m = SIZE.exec(value.trim())
    bytes = m ? Number(m[1]) * UNIT[m[2].toLowerCase()] : NaN
  }
  if (typeof bytes !== 'number' || !Number.isSafeInteger(bytes) || bytes <= 0) {
    throw ringlogError('RINGLOG_BAD_ARGUMENT',
      `option ${name} must be a positive integer number of bytes or a size such as '16M', not ${String(value)}`)
  }
  return bytes
}

/** The native constructor's arguments from `new Writer(ring, options)`. */
function openArguments (ring, options) {
  if (typeof ring !== 'string') {
    throw ringlogError('RINGLOG_BAD_NAME',
      `ring must be a string (1 to 64 characters from A-Z a-z 0-9 . _ -), not ${typeof ring}`)
  }
  if (options === undefined || options === null) options = {}
  if (typeof options !== 'object') {
    throw ringlogError('RINGLOG_BAD_ARGUMENT', `options must be an object, not ${typeof options}`)
  }
  for (const key of Object.keys(options)) {
    if (!WRITER_OPTIONS.includes(key)) {
      throw ringlogError('RINGLOG_BAD_ARGUMENT',
        `unknown option '${key}': a Writer takes ${WRITER_OPTIONS.join(', ')}`)
    }
  }
  const { policy = 'block', drainGraceMs, create = true, path, mode } = options
  let policyKind, blockMs
  if (policy === 'block') {
    policyKind = 0; blockMs = 0
  } else if (policy === 'drop') {
    policyKind = 1; blockMs = 0
  } else if (typeof policy === 'number' && Number.isFinite(policy) && policy >= 0) {
    policyKind = 2; blockMs = policy
  } else {
    throw ringlogError('RINGLOG_BAD_ARGUMENT',
      `option policy must be 'block', 'drop' or a number of milliseconds to block then drop, not ${String(policy)}`)
  }
  if (drainGraceMs !== undefined && !(typeof drainGraceMs === 'number' && Number.isFinite(drainGraceMs) && drainGraceMs >= 0)) {
    throw ringlogError('RINGLOG_BAD_ARGUMENT',
      `option drainGraceMs must be a number of milliseconds, not ${String(drainGraceMs)}`)
  }
  if (typeof create !== 'boolean') {
    throw ringlogError('RINGLOG_BAD_ARGUMENT', `option create must be true or false, not ${String(create)}`)
  }
  if (path !== undefined && (typeof path !== 'string' || path === '')) {
    throw ringlogError('RINGLOG_BAD_ARGUMENT', `option path must be a non-empty string, not ${String(path)}`)
  }
  if (mode !== undefined && !(Number.isInteger(mode) && mode >= 0 && mode <= 0o7777)) {
    throw ringlogError('RINGLOG_BAD_ARGUMENT', `option mode must be a file mode such as 0o660, not ${String(mode)}`)
  }
  return [ring, path, size('capacity', options.capacity), size('maxRecord', options.maxRecord),
    create, policyKind, blockMs, drainGraceMs, mode]
}

const { open, write, writeRecord, writeLine, stats, drainAlive, maxRecord, ringName, close, release } = native

// A Writer's native entry is freed once the Writer is garbage-collected (closing it if the
// program did not).
const collected = new FinalizationRegistry(release)

/**
 * A handle on ring `ring` (`/dev/shm/ringlog-<ring>`, or `options.path`). Every `write` is one
 * record: whole in the drain's output, or not at all.
 */
class Writer {
  #handle
  #closed = false

  constructor (ring, options) {
    this.#handle = open(...openArguments(ring, options))
    collected.register(this, this.#handle)
  }

  /** One record (a string or a Buffer). True when written, false when dropped on a full ring. */
  write (message) { return write(this.#handle, message) }

  /** One record with a level ('error' ... 'trace', or 0 to 5) and a target. */
  writeRecord (level, target, message) { return writeRecord(this.#handle, level, target, message) }

  /** One record of `line` without its trailing newline (what pino writes). */
  writeLine (level, line) { return writeLine(this.#handle, level, line) }

  /** { written, dropped, blockedMs } of this process through this writer. */
  stats () { return stats(this.#handle) }

  /** True while a drain holds the ring. */
  drainAlive () { return drainAlive(this.#handle) }

  /** The ring's largest record in bytes (target + message). */
  get maxRecord () { return maxRecord(this.#handle) }

  /** The ring's name (or path). */
  get ring () { return ringName(this.#handle) }

  get closed () { return this.#closed }

  /**
   * Releases the writer and its producer slot (the drain no longer counts it as attached);
   * what it wrote stays in the ring for the drain. Idempotent.
   */
  close () {
    this.#closed = true
    close(this.#handle)
  }
}

/** pino's numeric level -> ringlog's level number (1 error ... 5 trace). */
function ringlogLevel (pinoLevel) {
  if (pinoLevel >= 50) return 1
  if (pinoLevel >= 40) return 2
  if (pinoLevel >= 30) return 3
  if (pinoLevel >= 20) return 4
  if (pinoLevel > 0) return 5
  return 0
}

/**
 * A synchronous pino destination: `pino(require('ringlog').destination({ ring: 'svc' }))`.
 * Each pino line is one record, written into the ring before the log call returns (its
 * trailing newline dropped: the drain ends each record with one). Nothing is buffered in the
 * process, so `process.exit()` right after logging loses nothing.
 *
 * Errors (a line above the ring's max record, a closed destination) are emitted as 'error'
 * events; as with any Node stream, one with no listener throws from the log call. A line above
 * the max record is also replaced in the log by a notice record saying so. A record
 * dropped on a full ring (policy 'drop' or a bounded block) is not an error: it is counted
 * (`stats().dropped`) and the drain writes the count into the log.
 */
class PinoDestination extends EventEmitter {
  constructor (writer) {
    super()
    this.writer = writer
    // pino tells a stream from an options object by `writable`.
    this.writable = true
    // Ask pino to set `lastLevel` before each write, to stamp the record's level.
    this[Symbol.for('pino.metadata')] = true
    this.lastLevel = 0
  }

  write (line) {
    try {
      this.writer.writeLine(ringlogLevel(this.lastLevel), line)
    } catch (err) {
      if (err.code === 'RINGLOG_TOO_LARGE') {
        // The log says what is missing, in the line's place.
        this.writer.writeRecord(1, 'ringlog', `ringlog: a pino line was not logged: ${err.message}`)
      }
      this.emit('error', err)
    }
    return true
  }

  /** Nothing is buffered: every line is in the ring when `write` returns. */
  flush (callback) {
    if (typeof callback === 'function') process.nextTick(callback, null)
  }

  flushSync () {}

  /** Closes the writer; records written stay in the ring for the drain. */
  end () {
    if (!this.writable) return
    this.writable = false
    this.writer.close()
    process.nextTick(() => { this.emit('finish'); this.emit('close') })
  }

  destroy () { this.end() }

  stats () { return this.writer.stats() }

  drainAlive () { return this.writer.drainAlive() }
}

/** `destination({ ring, ...writerOptions })`: see PinoDestination. */
function destination (options) {
  if (typeof options === 'string') options = { ring: options }
  if (options === null || typeof options !== 'object') {
    throw ringlogError('RINGLOG_BAD_ARGUMENT', 'destination() takes { ring, ...Writer options }')
  }
  const { ring, ...writerOptions } = options
  return new PinoDestination(new Writer(ring, writerOptions))
}

module.exports = { Writer, destination, PinoDestination, status }
