'use strict';
// One run: a contender, a workload, N cluster workers x M pino (or winston) calls into a fresh
// log file. Starts the service, forks the workers, starts the clock once all are ready, stops
// it when every record is in the file, then checks the log. Returns the raw figures.

const cluster = require('node:cluster');
const fs = require('node:fs');
const path = require('node:path');
const { CONTENDERS } = require('./contenders');
const integrity = require('./integrity');
const measure = require('./measure');

const RUN_DEADLINE_MS = 900000;

// A promise with its resolve and reject at hand; a rejection nobody awaits yet is not unhandled.
function deferred() {
  let resolve, reject;
  const promise = new Promise((yes, no) => ((resolve = yes), (reject = no)));
  promise.catch(() => {});
  return { promise, resolve, reject };
}

function forkWorkers(run, service) {
  cluster.setupPrimary({ exec: path.join(__dirname, 'worker.js'), silent: false });
  const workers = [];
  for (let producer = 0; producer < run.producers; producer++) {
    const worker = cluster.fork({ RINGLOG_BENCH_RUN: JSON.stringify(run), RINGLOG_BENCH_PRODUCER: String(producer) });
    const ready = deferred();
    const report = deferred();
    const fail = (error) => (ready.reject(error), report.reject(error));
    worker.on('message', (message) => {
      if (service.onWorkerMessage(message)) return;
      if (message.type === 'ready') ready.resolve();
      else if (message.type === 'report') report.resolve({ ...message, receivedNs: measure.now() });
      else if (message.type === 'error') fail(new Error(`worker ${producer} failed: ${message.error}`));
    });
    const exited = new Promise((resolve) => worker.once('exit', resolve));
    worker.once('exit', (code, signal) => fail(new Error(`worker ${producer} exited (${code ?? signal}) before reporting`)));
    workers.push({ worker, ready: ready.promise, report: report.promise, exited });
  }
  return {
    workers: workers.map((w) => w.worker),
    ready: Promise.all(workers.map((w) => w.ready)),
    reports: Promise.all(workers.map((w) => w.report)),
    exited: Promise.all(workers.map((w) => w.exited)),
  };
}

function withDeadline(promise, what) {
  let timer;
  const deadline = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: no answer in ${RUN_DEADLINE_MS} ms`)), RUN_DEADLINE_MS);
  });
  return Promise.race([promise, deadline]).finally(() => clearTimeout(timer));
}

async function runOnce(run, { keepLog = false } = {}) {
  const contender = CONTENDERS[run.contender];
  const service = await contender.startService(run);
  let forked;
  let timing;
  let reports;
  try {
    forked = forkWorkers(run, service);
    await withDeadline(forked.ready, 'workers ready');
    service.clockStarts();
    const startNs = measure.now();
    for (const worker of forked.workers) worker.send('start');
    reports = await withDeadline(forked.reports, 'worker reports');
    const finished = await withDeadline(
      service.finish({
        lastWorkerEndNs: reports.map((r) => BigInt(r.endNs)).reduce((a, b) => (a > b ? a : b)),
        reportsReceivedNs: reports.map((r) => r.receivedNs).reduce((a, b) => (a > b ? a : b)),
        expectedLines: run.producers * run.perProducer,
      }),
      'service finish',
    );
    timing = { startNs, ...finished };
    await withDeadline(forked.exited, 'workers exit');
  } finally {
    for (const worker of forked?.workers ?? []) if (!worker.isDead()) worker.process.kill('SIGKILL');
    await service.close();
  }

  const verdict = integrity.checkFile(run.logPath, run.producers, run.perProducer);
  if (!keepLog) fs.rmSync(run.logPath, { force: true });
  const latencies = [];
  for (const report of reports) {
    const buffer = Buffer.from(report.latencies, 'base64');
    latencies.push(new Float64Array(buffer.buffer, buffer.byteOffset, buffer.length / 8));
  }
  const records = run.producers * run.perProducer;
  const seconds = Number(timing.endNs - timing.startNs) / 1e9;
  const producerCpuNs = reports.reduce((sum, r) => sum + r.cpuNs, 0);
  return {
    contender: run.contender,
    workload: run.workload,
    producers: run.producers,
    perProducer: run.perProducer,
    seconds,
    recordsPerS: records / seconds,
    cpuNsPerRecord: (producerCpuNs + timing.cpuNs) / records,
    cpuNsProducers: producerCpuNs,
    cpuNsService: timing.cpuNs,
    timerFloorNs: Math.min(...reports.map((r) => r.timerFloor.p50)),
    latencyNs: measure.latencySummary(concat(latencies)),
    latencies: concat(latencies),
    integrity: verdict,
    logKept: keepLog ? run.logPath : null,
  };
}

function concat(arrays) {
  const out = new Float64Array(arrays.reduce((n, a) => n + a.length, 0));
  let at = 0;
  for (const a of arrays) {
    out.set(a, at);
    at += a.length;
  }
  return out;
}

module.exports = { runOnce, concat };
