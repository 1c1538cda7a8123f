// The prebuilt addon a packed package carries (see pack.js): built by `npm pack` from the same
// sources, for the packing machine's platform, and used at install on a machine of the same
// platform when it loads there, so that machine needs no Rust toolchain; anywhere else, the
// install builds from the sources in rust/ (build.js).
'use strict'
const path = require('node:path')

/** This machine's platform: `linux-x64-gnu`, `linux-arm64-musl`, `darwin-arm64`, ... */
function tag () {
  if (process.platform !== 'linux') return `${process.platform}-${process.arch}`
  const libc = process.report.getReport().header.glibcVersionRuntime ? 'gnu' : 'musl'
  return `${process.platform}-${process.arch}-${libc}`
}

/** Where the prebuilt addon for this platform lies in the package at `dir`. */
function file (dir) {
  return path.join(dir, 'prebuilt', `ringlog.${tag()}.node`)
}

module.exports = { tag, file }
