'use strict';
// One cluster worker: opens its contender's logger, builds its calls, says ready, waits for
// the start message, makes its calls with each one timed, closes the logger (everything it
// logged is then in the file or with the service), and reports its latencies, CPU and finish
// time to the primary. Never checks the log.

const { CONTENDERS } = require('./contenders');
const measure = require('./measure');
const workload = require('./workload');

async function main() {
  const run = JSON.parse(process.env.RINGLOG_BENCH_RUN);
  const producer = Number(process.env.RINGLOG_BENCH_PRODUCER);
  const sink = await CONTENDERS[run.contender].open(run);
  const calls = workload.logCalls(run.workload, producer, run.perProducer);
  const latencies = new Float64Array(calls.length);
  const timerFloor = measure.timerFloorNs();
  const started = new Promise((resolve) => process.once('message', resolve));
  process.send({ type: 'ready' });
  await started;

  const cpuStart = process.cpuUsage();
  const log = sink.log;
  const now = measure.now;
  for (let i = 0; i < calls.length; i++) {
    const start = now();
    log(calls[i]);
    latencies[i] = Number(now() - start);
  }
  await sink.close();
  const endNs = measure.now();
  const cpuNs = measure.cpuNsSelf(cpuStart);
  const report = {
    type: 'report',
    producer,
    endNs: String(endNs),
    cpuNs,
    timerFloor,
    latencies: Buffer.from(latencies.buffer).toString('base64'),
  };
  process.send(report, () => process.disconnect());
}

main().catch((error) => {
  process.send({ type: 'error', error: String(error?.stack ?? error) }, () => process.exit(1));
});
