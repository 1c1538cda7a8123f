'use strict';
// Smoke test of the Node harness, run by scripts/test-all.sh: the integrity checker really
// flags torn, interleaved, duplicated, missing and reordered lines, and a tiny configuration
// runs every contender under cluster with ringlog's logs clean. Needs pino and winston
// (benches/node's npm install), the built ringlog package and ringlog-drain (the test script
// provides all of them); a missing one fails the test.

const test = require('node:test');
const assert = require('node:assert');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { checkText } = require('../integrity');
const workload = require('../workload');
const bench = require('../bench');
const { CONTENDERS } = require('../contenders');

// What pino writes: one JSON object per line, the record in its msg.
function lines(producers = 2, perProducer = 40, kind = 'mix') {
  const out = [];
  for (let p = 0; p < producers; p++) {
    for (const call of workload.logCalls(kind, p, perProducer)) out.push(JSON.stringify({ level: 30, ...call.fields, msg: call.message }) + '\n');
  }
  return out;
}

const check = (ls, producers = 2, perProducer = 40) => checkText(ls.join(''), producers, perProducer);

test('a clean log is clean', () => {
  const verdict = check(lines());
  assert.ok(verdict.clean, JSON.stringify(verdict));
  assert.strictEqual(verdict.intact, 80);
});

test('a 64 KiB line split into 16 KiB writes with other lines between them is torn and lost', () => {
  const ls = lines();
  const big = ls[15];
  assert.ok(big.length > 64 * 1024);
  ls[15] = big.slice(0, 16384) + ls[3] + big.slice(16384, 32768) + ls[4] + big.slice(32768);
  ls.splice(3, 2);
  const verdict = check(ls);
  assert.strictEqual(verdict.lost, 1, JSON.stringify(verdict)); // line 15; lines 3 and 4 are whole
  assert.strictEqual(verdict.torn, 2, JSON.stringify(verdict)); // its head (no end) and its tail (no begin)
  assert.strictEqual(verdict.duplicated, 0);
});

test('two lines exchanging their halves are torn', () => {
  const ls = lines(2, 40, 'small');
  const [a, b] = [ls[0], ls[41]];
  ls[0] = a.slice(0, 110) + b.slice(110);
  ls[41] = b.slice(0, 110) + a.slice(110);
  const verdict = check(ls);
  assert.strictEqual(verdict.torn, 2, JSON.stringify(verdict));
  assert.strictEqual(verdict.lost, 2, JSON.stringify(verdict));
});

test('a changed letter in a body is torn', () => {
  const ls = lines(2, 40, 'small');
  const at = ls[7].indexOf('<') + 30;
  ls[7] = ls[7].slice(0, at) + 'Z' + ls[7].slice(at + 1);
  const verdict = check(ls);
  assert.deepStrictEqual([verdict.torn, verdict.lost], [1, 1], JSON.stringify(verdict));
});

test('duplicated, missing and reordered lines are counted', () => {
  const ls = lines(2, 40, 'small');
  ls.push(ls[5]);
  ls.splice(9, 1);
  [ls[20], ls[21]] = [ls[21], ls[20]];
  const verdict = check(ls);
  assert.deepStrictEqual(
    [verdict.duplicated, verdict.lost, verdict.outOfOrder, verdict.torn, verdict.clean],
    [1, 1, 1, 0, false],
    JSON.stringify(verdict),
  );
});

test('a truncated last line is torn and lost', () => {
  const text = lines(2, 40, 'small').join('');
  const verdict = checkText(text.slice(0, -60), 2, 40);
  assert.deepStrictEqual([verdict.torn, verdict.lost], [1, 1], JSON.stringify(verdict));
});

test('every contender runs under cluster and ringlog is clean', async () => {
  const options = bench.parseOptions(['--producers', '1,2', '--calls', '300', '--mix-calls', '48', '--reps', '1', '--single-call-calls', '20000']);
  assert.ok(fs.existsSync(options.drain), `build ringlog-drain first: no ${options.drain}`);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ringlog-nodebench-test-'));
  try {
    const result = await bench.runAll(options, dir, () => {});
    assert.deepStrictEqual(result.skipped, {}, `contenders could not run: ${JSON.stringify(result.skipped)}`);
    const ran = new Set(result.summary.map((r) => `${r.workload}|${r.producers}|${r.contender}`));
    for (const w of ['small', 'mix']) for (const n of [1, 2]) for (const c of Object.keys(CONTENDERS)) assert.ok(ran.has(`${w}|${n}|${c}`), `${w} N=${n} ${c} did not run`);
    for (const row of result.summary) {
      assert.ok(row.recordsPerS > 0 && row.latencyNs.calls === row.recordsPerRep, JSON.stringify(row));
      assert.strictEqual(row.integrity.expected, row.recordsPerRep);
      if (row.contender === 'ringlog') assert.ok(row.integrity.clean, JSON.stringify(row));
    }
    assert.ok(result.singleCall.nsPerCallMedian['ringlog w.write(Buffer)'] > 0);
    assert.match(bench.render(result), /\| 2 \| ringlog \|/);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
