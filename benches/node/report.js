'use strict';
// Turns the runs into what a reader sees: a summary per configuration (median over reps of
// throughput and CPU, latency quantiles over every call of every rep, integrity summed over
// reps), the markdown table, and the checks against the targets. No measuring here.

const measure = require('./measure');
const { concat } = require('./runner');

const BASELINE = 'pino sync';
const COUNTS = ['lost', 'torn', 'duplicated', 'outOfOrder', 'unexpected'];

function summarize(runs) {
  const groups = new Map();
  for (const run of runs) {
    const key = `${run.workload}|${run.producers}|${run.contender}`;
    if (!groups.has(key)) groups.set(key, []);
    groups.get(key).push(run);
  }
  return [...groups.values()].map((reps) => {
    const integrity = { expected: 0, intact: 0, lost: 0, torn: 0, duplicated: 0, outOfOrder: 0, unexpected: 0 };
    for (const rep of reps) for (const key of Object.keys(integrity)) integrity[key] += rep.integrity[key];
    integrity.clean = reps.every((rep) => rep.integrity.clean);
    return {
      workload: reps[0].workload,
      producers: reps[0].producers,
      contender: reps[0].contender,
      reps: reps.length,
      recordsPerRep: reps[0].producers * reps[0].perProducer,
      recordsPerS: measure.median(reps.map((r) => r.recordsPerS)),
      cpuNsPerRecord: measure.median(reps.map((r) => r.cpuNsPerRecord)),
      latencyNs: measure.latencySummary(concat(reps.map((r) => r.latencies))),
      timerFloorNs: Math.min(...reps.map((r) => r.timerFloorNs)),
      integrity,
    };
  });
}

const rate = (v) => (v >= 1e6 ? `${(v / 1e6).toFixed(2)} M` : v >= 1e3 ? `${(v / 1e3).toFixed(1)} k` : v.toFixed(0));
const ns = (v) => (v >= 1e6 ? `${(v / 1e6).toFixed(1)} ms` : v >= 1e3 ? `${(v / 1e3).toFixed(1)} us` : `${v.toFixed(0)} ns`);

function integrityCell(integrity) {
  if (integrity.clean) return `clean (${integrity.intact})`;
  const parts = COUNTS.filter((k) => integrity[k]).map((k) => `${integrity[k]} ${k === 'outOfOrder' ? 'out of order' : k}`);
  return `**${parts.join(', ')}** of ${integrity.expected}`;
}

const find = (rows, workload, producers, contender) =>
  rows.find((r) => r.workload === workload && r.producers === producers && r.contender === contender);

function markdown(rows) {
  const lines = [];
  const workloads = [...new Set(rows.map((r) => r.workload))].sort((a, b) => (a === 'small' ? -1 : b === 'small' ? 1 : 0));
  for (const workload of workloads) {
    lines.push(`Workload \`${workload}\`:`, '');
    lines.push(`| N | contender | records/s | vs ${BASELINE} | p50 | p99 | p99.9 | CPU/record | integrity (all reps) |`);
    lines.push('|---|---|---|---|---|---|---|---|---|');
    const mine = rows.filter((r) => r.workload === workload).sort((a, b) => a.producers - b.producers);
    for (const row of mine) {
      const base = find(rows, workload, row.producers, BASELINE);
      const ratio = base ? `${(row.recordsPerS / base.recordsPerS).toFixed(2)}x` : '-';
      const l = row.latencyNs;
      lines.push(
        `| ${row.producers} | ${row.contender} | ${rate(row.recordsPerS)} | ${ratio} | ${ns(l.p50)} | ${ns(l.p99)} | ${ns(l.p999)} | ` +
          `${ns(row.cpuNsPerRecord)} | ${integrityCell(row.integrity)} |`,
      );
    }
    lines.push('');
  }
  return lines.join('\n');
}

function targets(rows, singleCall) {
  const checks = [];
  if (singleCall) {
    for (const name of ['ringlog w.write(Buffer)', 'ringlog w.write(string)']) {
      const v = singleCall.nsPerCallMedian[name];
      checks.push({ target: `${name} of 128 B <= 300 ns per call`, measured: `${v.toFixed(0)} ns`, met: v <= 300 });
    }
  }
  const top = Math.max(0, ...rows.map((r) => r.producers));
  for (const workload of [...new Set(rows.map((r) => r.workload))]) {
    const ringlog = find(rows, workload, top, 'ringlog');
    const base = find(rows, workload, top, BASELINE);
    if (ringlog && base) {
      const ratio = ringlog.recordsPerS / base.recordsPerS;
      checks.push({ target: `N = ${top}, ${workload}: ringlog >= 2x ${BASELINE} end to end`, measured: `${ratio.toFixed(2)}x`, met: ratio >= 2 });
    }
  }
  const mine = rows.filter((r) => r.contender === 'ringlog');
  if (mine.length) {
    const bad = mine.filter((r) => !r.integrity.clean);
    checks.push({
      target: 'ringlog: zero lost, torn or duplicated lines in every run',
      measured: bad.length ? bad.map((r) => `${r.workload} N=${r.producers}: ${integrityCell(r.integrity)}`).join('; ') : 'clean in every run',
      met: bad.length === 0,
    });
  }
  return checks;
}

const targetsMarkdown = (checks) => checks.map((c) => `- ${c.met ? 'met' : 'MISSED'}: ${c.target}: ${c.measured}`).join('\n');

function singleCallMarkdown(single) {
  const medians = single.nsPerCallMedian;
  const baseline = Object.entries(medians).find(([name]) => name.startsWith('loop'));
  const cells = Object.entries(medians)
    .filter(([name]) => !name.startsWith('loop'))
    .map(([name, v]) => `${name} ${v.toFixed(0)} ns`)
    .join(', ');
  const floor = single.timerFloorNs.p50;
  const timed = Object.entries(single.timedOneByOneNs)
    .filter(([name]) => !name.startsWith('loop'))
    .map(([name, t]) => `${name} p50 ${Math.max(0, t.p50 - floor).toFixed(0)} ns, p99 ${Math.max(0, t.p99 - floor).toFixed(0)} ns`)
    .join(', ');
  return (
    `One call, ${single.recordBytes} B, ${single.callsPerRep} calls in a loop (CPU time per call), median of ${single.reps}: ${cells} ` +
    `(the loop itself with a no-op function: ${baseline[1].toFixed(0)} ns, included in each). ` +
    `Each call timed alone, the timer's ${floor.toFixed(0)} ns subtracted: ${timed}.`
  );
}

module.exports = { summarize, markdown, targets, targetsMarkdown, singleCallMarkdown, BASELINE };
