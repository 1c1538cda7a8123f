#!/usr/bin/env bash
# The Node part of the one test command (scripts/test-all.sh):
#  1. installs ringlog-node's pinned dev dependencies from the npm registry (pino, winston,
#     @napi-rs/cli, typescript) into ringlog-node/node_modules (gitignored) with `npm ci`, then
#     builds the addon (`npm run build`: `napi build --release`, see ringlog-node/build.js);
#  2. installs ringlog-node the way users do, `npm install <repo>/ringlog-node` into a new empty
#     directory with its install script approved first as the README says (npm >= 11.16 warns
#     about an unapproved one, npm 12 skips it), and writes a record through it from there;
#  3. packs it (`npm pack`) and installs the tarball into new directories outside the repository
#     the same way, built from the tarball's sources and with its prebuilt addon, and writes a
#     record through each into a real drain's file;
#  4. runs the node:test suites against a real ringlog-drain: RINGLOG_DRAIN, by default
#     target/release/ringlog-drain (built by the cargo part, which runs first; built here if
#     missing).
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD

for tool in node npm cargo; do
    command -v "$tool" >/dev/null 2>&1 || { echo "test-node: $tool not found (needed for the Node tests)"; exit 1; }
done
echo "test-node: node $(node --version), npm $(npm --version)"
# The addon's engines field (ringlog-node/package.json): older Node fails here, with the reason,
# rather than somewhere in the build or the tests.
node -e 'const [a, b] = process.versions.node.split(".").map(Number); process.exit(a > 20 || (a === 20 && b >= 17) ? 0 : 1)' || {
    echo "test-node: node $(node --version) is older than ringlog-node needs (>= 20.17, its package.json engines)"
    exit 1
}

export RINGLOG_DRAIN=${RINGLOG_DRAIN:-$repo/target/release/ringlog-drain}
# shellcheck source=scripts/drained-line.sh
. scripts/drained-line.sh
[ -x "$RINGLOG_DRAIN" ] || cargo build --release -p ringlog-drain --bin ringlog-drain

(cd ringlog-node && npm ci --no-audit --no-fund --ignore-scripts && npm run build)

app=$(mktemp -d)
trap 'rm -rf "$app"' EXIT
(
    cd "$app"
    npm init -y >/dev/null
    npm pkg set "allowScripts[file:$repo/ringlog-node]=true" --json
    npm install --no-audit --no-fund "$repo/ringlog-node" 2>&1 | tee install.log
    if grep -q allowScripts install.log; then
        echo "test-node: npm still asks for the install script's approval (README From Node.js)"
        exit 1
    fi
    ring="node-install-$$"
    node -e "
        const { Writer } = require('ringlog')
        const w = new Writer('$ring', { capacity: 1 << 16, policy: 'drop' })
        if (w.write('installed') !== true) process.exit(1)
        w.close()
        console.log('test-node: npm install ./ringlog-node into a new directory: builds, loads, writes')
    "
    rm -f "/dev/shm/ringlog-$ring"
)

# 3. The packed package installs anywhere: `npm pack` (its prepack copies the Rust crates into
#    the tarball and the addon built here for this platform, ringlog-node/pack.js), then
#    `npm install <tarball>` in new directories outside the repository, its install script
#    approved as npm names a tarball (`file:<path>`): once as on a machine of another platform
#    (RINGLOG_BUILD_FROM_SOURCE=1), where the addon must build from the tarball's own sources and
#    leave no build directory behind, and once as on this one, where the prebuilt addon must be
#    used. Each must write a record that a real ringlog-drain puts in a file.
packed=$(mktemp -d)
trap 'rm -rf "$app" "$packed"' EXIT
(cd ringlog-node && npm pack --silent --pack-destination "$packed" >/dev/null)
for leftover in ringlog-node/rust ringlog-node/prebuilt; do
    [ ! -e "$leftover" ] || { echo "test-node: npm pack left $leftover behind (postpack)"; exit 1; }
done
tarball=$(ls "$packed"/ringlog-*.tgz)
for how in source prebuilt; do
    mkdir "$packed/$how"
    (
        cd "$packed/$how"
        npm init -y >/dev/null
        npm pkg set "allowScripts[file:$tarball]=true" --json
        if [ "$how" = source ]; then export RINGLOG_BUILD_FROM_SOURCE=1; fi
        # --foreground-scripts: the install script's output in the log (npm hides it otherwise).
        npm install --no-audit --no-fund --foreground-scripts "$tarball" 2>&1 | tee install.log
        if grep -q allowScripts install.log; then
            echo "test-node: npm still asks for the tarball's install script's approval"
            exit 1
        fi
        case $how in
            source) expected='from the sources in rust/' ;;
            prebuilt) expected='using the prebuilt addon for' ;;
        esac
        grep -q "$expected" install.log || {
            echo "test-node: the tarball's addon was not installed the $how way ('$expected')"
            exit 1
        }
        if [ -d node_modules/ringlog/rust/target ] && [ -z "${CARGO_TARGET_DIR:-}" ]; then
            echo "test-node: the tarball's build left its build directory in node_modules"
            exit 1
        fi
        # The record goes into the ring first (the writer creates it), then to a drain's file.
        ring="node-tarball-$how-$$"
        node -e "
            const { Writer } = require('ringlog')
            const w = new Writer('$ring')
            if (w.write('installed from the tarball ($how)') !== true) process.exit(1)
            w.close()
        "
        drained_line "$ring" "$packed/$how.log" "installed from the tarball ($how)" || {
            echo "test-node: the record written through the tarball's addon did not reach the file"
            exit 1
        }
        echo "test-node: npm pack, then npm install <tarball> outside the repository ($how): loads, writes"
    )
done

# Each skipped test prints a `SKIPPED: test: why` line for test-all.sh's count (the reporter's
# doc says why); tap is node's own choice when stdout is not a terminal.
cd ringlog-node
node --test --test-reporter=tap --test-reporter-destination=stdout \
    --test-reporter="$repo/scripts/node-skip-reporter.mjs" --test-reporter-destination=stdout \
    test/*.test.js
