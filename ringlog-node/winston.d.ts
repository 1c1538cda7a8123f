// Type declarations of `ringlog/winston` (see winston.js).
import TransportStream = require('winston-transport')
import type { Writer, WriterOptions } from './index'

declare namespace RinglogTransport {
  interface Options extends WriterOptions, TransportStream.TransportStreamOptions {
    ring: string
  }
}

/** A winston transport: each entry one ringlog record, with its level. */
declare class RinglogTransport extends TransportStream {
  constructor (options: RinglogTransport.Options)
  readonly writer: Writer
  static RinglogTransport: typeof RinglogTransport
}

export = RinglogTransport
