// Type declarations of the npm package `ringlog` (see index.js).
import { EventEmitter } from 'node:events'

/** What a Writer does when the ring is full. */
export type FullPolicy =
  /** Wait for the drain (the default); with no drain running, drop after a grace period. */
  | 'block'
  /** Drop at once and count it; the drain writes the exact count into the log. */
  | 'drop'
  /** Wait at most this many milliseconds, then drop and count. */
  | number

export interface WriterOptions {
  /** Data region size when this call creates the ring: a power of two (bytes or '16M'); default 4 MiB. An existing ring must have it. */
  capacity?: number | string
  /** Largest record when this call creates the ring (default a quarter of the capacity). */
  maxRecord?: number | string
  /** Full-ring policy (default 'block'). */
  policy?: FullPolicy
  /** How long 'block' waits for a drain that is not running before it drops (default 1000 ms). */
  drainGraceMs?: number
  /** Create the ring if it does not exist (default true: start order does not matter). */
  create?: boolean
  /** An explicit segment file instead of /dev/shm/ringlog-<ring>. */
  path?: string
  /** File mode when creating (default 0o600). */
  mode?: number
}

/** Records of this process through one writer. */
export interface WriterStats {
  /** Records committed to the ring. */
  written: number
  /** Records the full policy dropped (the drain reports them in the log). */
  dropped: number
  /** Time spent waiting for space in a full ring, in milliseconds. */
  blockedMs: number
}

/** A ringlog level by name (any case) or number (0 none, 1 error ... 5 trace). */
export type Level = 'none' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 0 | 1 | 2 | 3 | 4 | 5

/** Every error ringlog throws: `code` and `status` come from the table all bindings share. */
export interface RinglogError extends Error {
  code: keyof typeof status
  status: number
}

/** The shared status table: name -> number. */
export declare const status: Readonly<{
  RINGLOG_OK: 0
  RINGLOG_NULL_ARGUMENT: 1
  RINGLOG_BAD_NAME: 2
  RINGLOG_BAD_ARGUMENT: 3
  RINGLOG_NOT_FOUND: 4
  RINGLOG_NOT_A_RING: 5
  RINGLOG_VERSION_MISMATCH: 6
  RINGLOG_PERMISSION: 7
  RINGLOG_NO_SPACE: 8
  RINGLOG_IO: 9
  RINGLOG_TOO_LARGE: 10
  RINGLOG_DROPPED: 11
  RINGLOG_WOULD_DEADLOCK: 12
  RINGLOG_CLOSED: 13
  RINGLOG_PANIC: 14
}>

/**
 * A handle on one ring (`/dev/shm/ringlog-<ring>`). Each write is one record: whole and
 * contiguous in the drain's output, or not at all. Throws a RinglogError on bad input.
 */
export declare class Writer {
  constructor (ring: string, options?: WriterOptions)
  /** One record. True when written, false when dropped on a full ring (counted). */
  write (message: string | Uint8Array): boolean
  /** One record with a level and a target (a module or component name). */
  writeRecord (level: Level, target: string, message: string | Uint8Array): boolean
  /** One record of `line` without its trailing newline (what pino writes). */
  writeLine (level: Level, line: string | Uint8Array): boolean
  /** This process's records through this writer. */
  stats (): WriterStats
  /** True while a ringlog-drain holds the ring. */
  drainAlive (): boolean
  /** The ring's largest record in bytes (target + message). */
  readonly maxRecord: number
  /** The ring's name (or path). */
  readonly ring: string
  readonly closed: boolean
  /**
   * Releases the writer (what it wrote stays in the ring for the drain) and its producer slot:
   * the drain no longer counts it as attached. Idempotent.
   */
  close (): void
}

/** The pino destination: synchronous, one pino line = one record, nothing buffered. */
export declare class PinoDestination extends EventEmitter {
  readonly writer: Writer
  writable: boolean
  write (line: string | Uint8Array): boolean
  flush (callback?: (err: Error | null) => void): void
  flushSync (): void
  end (): void
  destroy (): void
  stats (): WriterStats
  drainAlive (): boolean
}

export interface DestinationOptions extends WriterOptions {
  ring: string
}

/** `pino(destination({ ring: 'svc' }))`. */
export declare function destination (options: DestinationOptions | string): PinoDestination
