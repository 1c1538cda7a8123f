// Builds the native addon `ringlog.node` from the Rust sources with @napi-rs/cli
// (`napi build --release`): this directory's crate in the repository, or the copies in `rust/`
// in a packed package (see pack.js), unless the packed package's prebuilt addon is for this
// platform and loads here. Run by npm as the package's install script, so that
// `npm install /path/to/ringlog-node` builds it on the machine it is installed on; also
// `npm run build`. Needs a Rust toolchain (cargo), except where the prebuilt addon is used, and
// node >= 20.17.
//
// npm links a local directory dependency instead of copying it and installs none of its
// dependencies, so @napi-rs/cli is not necessarily in node_modules here: `npm exec` uses the
// local copy when there is one (a development checkout) and fetches the pinned version from
// the registry otherwise.
'use strict'
const { spawnSync } = require('node:child_process')
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const prebuilt = require('./prebuilt')

const NAPI_CLI = '@napi-rs/cli@3.10.12'

function run (command, args) {
  const result = spawnSync(command, args, { cwd: __dirname, stdio: 'inherit', env: process.env })
  if (result.error) return { ok: false, why: result.error.message }
  return { ok: result.status === 0, why: `exit status ${result.status}` }
}

// A packed package (npm pack, see pack.js) carries the crates in `rust/`, a workspace of their
// own; in the repository the crate is this directory, a member of the repository's workspace.
const packed = fs.existsSync(path.join(__dirname, 'rust', 'Cargo.toml'))

// A packed package also carries the addon `npm pack` built for its own platform: used when it
// is this one's and loads here (RINGLOG_BUILD_FROM_SOURCE=1 builds anyway).
if (packed && !process.env.RINGLOG_BUILD_FROM_SOURCE) {
  const ready = prebuilt.file(__dirname)
  if (fs.existsSync(ready)) {
    try {
      require(ready)
      fs.copyFileSync(ready, path.join(__dirname, 'ringlog.node'))
      console.error(`ringlog: using the prebuilt addon for ${prebuilt.tag()} (built by npm pack from the same sources)`)
      process.exit(0)
    } catch (err) {
      console.error(`ringlog: the prebuilt addon for ${prebuilt.tag()} does not load here ` +
        `(${err.message}); building from the sources in rust/`)
    }
  }
}

if (!run('cargo', ['--version']).ok) {
  console.error('ringlog: building the native addon needs a Rust toolchain (cargo on PATH): ' +
    'install one (https://rustup.rs), then run `npm run build` in ' + __dirname)
  process.exit(1)
}

// A packed build's intermediate files (some 250 MB) go to a temporary directory that is removed
// afterwards, not into node_modules, unless CARGO_TARGET_DIR says where they go; and the addon
// is stripped of its debug information (7 MB -> under 1 MB).
let scratch = null
const from = []
if (packed) {
  from.push('--manifest-path', path.join('rust', 'ringlog-node', 'Cargo.toml'), '--output-dir', '.', '--strip')
  if (!process.env.CARGO_TARGET_DIR) {
    scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'ringlog-node-build-'))
    from.push('--target-dir', scratch)
  }
}
const built = run('npm', ['exec', '--yes', `--package=${NAPI_CLI}`, '--',
  'napi', 'build', '--release', '--dts', 'native.d.ts', ...from])
if (scratch) fs.rmSync(scratch, { recursive: true, force: true })
if (!built.ok) {
  console.error(`ringlog: napi build failed (${built.why}) in ${__dirname}`)
  process.exit(1)
}
console.error(`ringlog: built ${path.join(__dirname, 'ringlog.node')}${packed ? ' from the sources in rust/' : ''}`)
