// Builds the native addon `ringlog.node` from the Rust sources with @napi-rs/cli
// (`napi build --release`): this directory's crate in the repository, or the copies in `rust/`
// in a packed package (see pack.js). Run by npm as the package's install script, so that
// `npm install /path/to/ringlog-node` builds it on the machine it is installed on; also
// `npm run build`. Needs a Rust toolchain (cargo) and node >= 20.17.
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

const NAPI_CLI = '@napi-rs/cli@3.10.12'

function run (command, args) {
  const result = spawnSync(command, args, { cwd: __dirname, stdio: 'inherit', env: process.env })
  if (result.error) return { ok: false, why: result.error.message }
  return { ok: result.status === 0, why: `exit status ${result.status}` }
}

if (!run('cargo', ['--version']).ok) {
  console.error('ringlog: building the native addon needs a Rust toolchain (cargo on PATH): ' +
    'install one (https://rustup.rs), then run `npm run build` in ' + __dirname)
  process.exit(1)
}

// A packed package (npm pack, see pack.js) carries the crates in `rust/`, a workspace of their
// own; in the repository the crate is this directory, a member of the repository's workspace.
// A packed build's intermediate files (some 250 MB) go to a temporary directory that is removed
// afterwards, not into node_modules, unless CARGO_TARGET_DIR says where they go; and the addon
// is stripped of its debug information (7 MB -> under 1 MB).
const packed = fs.existsSync(path.join(__dirname, 'rust', 'Cargo.toml'))
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
