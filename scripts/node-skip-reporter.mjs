// A node:test reporter that prints one `SKIPPED: <test>: <why>` line per skipped test, the line
// scripts/test-all.sh counts and lists (Rust's skip! and pytest's -ra summary print theirs).
// It sees every skip however it was written (`t.skip(why)`, `{ skip: why }`, `test.skip`), so
// no Node test passes silently. Used beside the usual reporter by scripts/test-node.sh and
// benches/node/test.sh:
//   node --test --test-reporter=tap --test-reporter-destination=stdout \
//        --test-reporter=<this file> --test-reporter-destination=stdout ...

export default async function* skipped(source) {
  for await (const event of source) {
    if (event.type !== 'test:pass' || event.data.skip === undefined || event.data.skip === false) continue
    const why = typeof event.data.skip === 'string' && event.data.skip !== '' ? event.data.skip : 'no reason given'
    const where = event.data.file ? ` (${event.data.file})` : ''
    yield `SKIPPED: ${event.data.name}${where}: ${why}\n`
  }
}
