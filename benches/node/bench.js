#!/usr/bin/env node
'use strict';
// ringlog from Node.js, side by side with what cluster services use today.
//
//   node benches/node/bench.js [--producers 1,2,4] [--calls 20000] [--mix-calls 2000]
//                              [--reps 3] [--json OUT.json] [--markdown OUT.md]
//
// N cluster workers x M pino calls (winston's for its transport) into one shared log, every
// contender in turn for each configuration (round-robin, so a noisy machine hurts all alike),
// R times. Every log is checked line by line; a contender's corruption is reported, never
// hidden. Exit status: 0 done, 1 a run failed or a ringlog log was not clean, 2 usage error.

const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { parseArgs } = require('node:util');
const { CONTENDERS, missing, REPO } = require('./contenders');
const measure = require('./measure');
const report = require('./report');
const { runOnce } = require('./runner');
const { measureSingleCall } = require('./single_call');
const workload = require('./workload');

const list = (text) => text.split(',').filter(Boolean);

function parseOptions(argv) {
  const { values } = parseArgs({
    args: argv,
    options: {
      producers: { type: 'string', default: '1,2,4' },
      calls: { type: 'string', default: '20000' },
      'mix-calls': { type: 'string', default: '2000' },
      reps: { type: 'string', default: '3' },
      workloads: { type: 'string', default: workload.WORKLOADS.join(',') },
      contenders: { type: 'string', default: Object.keys(CONTENDERS).join(',') },
      'single-call-calls': { type: 'string', default: '1000000' },
      // default: $RINGLOG_DRAIN, else target/release/ringlog-drain
      drain: { type: 'string', default: process.env.RINGLOG_DRAIN || path.join(REPO, 'target', 'release', 'ringlog-drain') },
      dir: { type: 'string' },
      'keep-logs': { type: 'boolean', default: false },
      json: { type: 'string' },
      markdown: { type: 'string' },
    },
  });
  const options = {
    producers: list(values.producers).map(Number),
    calls: Number(values.calls),
    mixCalls: Number(values['mix-calls']),
    reps: Number(values.reps),
    workloads: list(values.workloads),
    contenders: list(values.contenders),
    singleCallCalls: Number(values['single-call-calls']),
    drain: values.drain,
    dir: values.dir,
    keepLogs: values['keep-logs'],
    json: values.json,
    markdown: values.markdown,
  };
  const unknown = options.contenders.filter((name) => !(name in CONTENDERS));
  if (unknown.length) throw new UsageError(`unknown contenders ${unknown.join(', ')}; known: ${Object.keys(CONTENDERS).join(', ')}`);
  const badWorkloads = options.workloads.filter((name) => !workload.WORKLOADS.includes(name));
  if (badWorkloads.length) throw new UsageError(`unknown workloads ${badWorkloads.join(', ')}; known: ${workload.WORKLOADS.join(', ')}`);
  return options;
}

class UsageError extends Error {}

async function runAll(options, logDir, print = console.log) {
  const available = [];
  const skipped = {};
  for (const name of options.contenders) {
    const why = missing(name);
    if (why) {
      skipped[name] = why;
      print(`SKIPPED contender ${name}: ${why}`);
    } else available.push(name);
  }
  if (available.includes('ringlog') && !fs.existsSync(options.drain)) {
    throw new UsageError(`no ringlog-drain at ${options.drain}: build it with \`cargo build --release -p ringlog-drain\` or pass --drain PATH`);
  }
  const ringPrefix = `nodebench-${process.pid}`;
  const runs = [];
  for (const workloadName of options.workloads) {
    const perProducer = workloadName === 'small' ? options.calls : options.mixCalls;
    for (const producers of options.producers) {
      for (let rep = 0; rep < options.reps; rep++) {
        for (const contender of available) {
          const run = {
            contender,
            workload: workloadName,
            producers,
            perProducer,
            logPath: path.join(logDir, `${workloadName}-${producers}-${contender.replace(/[^A-Za-z0-9.]/g, '_')}-${rep}.log`),
            ring: `${ringPrefix}-${runs.length}`,
            drainBinary: options.drain,
          };
          const result = await runOnce(run, { keepLog: options.keepLogs });
          const v = result.integrity;
          print(
            `${workloadName.padEnd(5)} N=${producers} rep ${rep + 1}/${options.reps} ${contender.padEnd(15)} ` +
              `${Math.round(result.recordsPerS).toLocaleString('en').padStart(12)} records/s  p50 ${String(Math.round(result.latencyNs.p50)).padStart(7)} ns  ` +
              `integrity: ${v.clean ? 'clean' : JSON.stringify(v)}`,
          );
          runs.push(result);
        }
      }
    }
  }
  let singleCall = null;
  if (options.singleCallCalls > 0 && available.includes('ringlog')) {
    singleCall = await measureSingleCall({ logDir, ring: `${ringPrefix}-single`, drainBinary: options.drain, calls: options.singleCallCalls, reps: Math.max(options.reps, 3) });
  }
  const summary = report.summarize(runs);
  const targets = report.targets(summary, singleCall);
  for (const run of runs) delete run.latencies;
  return {
    machine: measure.machine(),
    command: ['node', path.relative(REPO, path.join(__dirname, 'bench.js')), ...process.argv.slice(2)].join(' '),
    config: { ...options, mixEvery: workload.MIX_EVERY, largeBytes: workload.LARGE_BODY, messageChars: workload.MESSAGE_CHARS, contenders: available },
    skipped,
    summary,
    singleCall,
    targets,
    runs,
  };
}

function render(result) {
  const floor = Math.min(...result.summary.map((r) => r.timerFloorNs));
  const parts = [
    `Latency is per call in the worker, the timer's own ${Math.round(floor)} ns included; CPU is all processes' ` +
      '(workers with their threads, the primary when it writes, the drain) per record; integrity sums every rep.',
    '',
    report.markdown(result.summary),
  ];
  if (result.singleCall) parts.push(report.singleCallMarkdown(result.singleCall), '');
  parts.push('Targets:', '', report.targetsMarkdown(result.targets));
  for (const [name, why] of Object.entries(result.skipped)) parts.push(`- SKIPPED ${name}: ${why}`);
  return parts.join('\n') + '\n';
}

const ringlogClean = (result) => result.summary.filter((r) => r.contender === 'ringlog').every((r) => r.integrity.clean);

async function main() {
  let options;
  try {
    options = parseOptions(process.argv.slice(2));
  } catch (error) {
    console.error(`bench: ${error.message}`);
    return 2;
  }
  const logDir = options.dir ?? fs.mkdtempSync(path.join(os.tmpdir(), 'ringlog-nodebench-'));
  fs.mkdirSync(logDir, { recursive: true });
  let result;
  try {
    result = await runAll(options, logDir);
  } catch (error) {
    console.error(`bench: ${error instanceof UsageError ? '' : 'a run failed: '}${error.stack ?? error}`);
    return error instanceof UsageError ? 2 : 1;
  } finally {
    if (!options.dir && !options.keepLogs) fs.rmSync(logDir, { recursive: true, force: true });
  }
  const text = render(result);
  const m = result.machine;
  console.log(`\n${m.cpus} CPUs (${m.cpuModel}), Linux ${m.kernel}, Node ${m.node}, load average ${m.loadAverage.join(' ')}`);
  console.log(text);
  if (options.markdown) fs.writeFileSync(options.markdown, text);
  if (options.json) fs.writeFileSync(options.json, JSON.stringify(result, (k, v) => (typeof v === 'bigint' ? String(v) : v), 1));
  return ringlogClean(result) ? 0 : 1;
}

if (require.main === module) {
  main().then((code) => process.exit(code));
}

module.exports = { parseOptions, runAll, render, UsageError };
