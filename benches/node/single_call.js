'use strict';
// The raw call alone: ns per ringlog `w.write` of a 128-byte record (as a Buffer and as a
// string, what pino hands a destination) against `fs.writeSync` on an O_APPEND descriptor, in
// one process while a real drain empties the ring. The ring (64 MiB) holds a whole rep, so
// this is the call's own cost, never a wait for the drain (the end-to-end runs show those).
// Two views: a loop of K calls divided by K, in this process's CPU time (on a machine others
// load, a wall-clock loop mostly measures waiting for a core), beside the same loop calling a
// function that does nothing (the loop's own cost); and each call timed alone, p50 and p99
// with the timer's own floor subtracted.

const fs = require('node:fs');
const path = require('node:path');
const measure = require('./measure');
const services = require('./services');
const { requireRinglog } = require('./contenders');

const RECORD_BYTES = 128;
const RING_CAPACITY = '64M';

function loopNs(fn, data, calls) {
  const start = process.cpuUsage();
  for (let i = 0; i < calls; i++) fn(data);
  return measure.cpuNsSelf(start) / calls;
}

function timedCalls(fn, data, calls) {
  const latencies = new Float64Array(calls);
  const now = measure.now;
  for (let i = 0; i < calls; i++) {
    const start = now();
    fn(data);
    latencies[i] = Number(now() - start);
  }
  return measure.latencySummary(latencies);
}

async function measureSingleCall({ logDir, ring, drainBinary, calls, reps }) {
  const { Writer } = requireRinglog();
  const ringLog = path.join(logDir, 'single-call-ringlog.log');
  const appendLog = path.join(logDir, 'single-call-o_append.log');
  const drain = await new services.DrainService(drainBinary, ring, ringLog, RING_CAPACITY).started();
  const fd = fs.openSync(appendLog, 'a');
  const samples = {};
  const timed = {};
  let timerFloor;
  try {
    const writer = new Writer(ring);
    const buffer = Buffer.alloc(RECORD_BYTES, 'x');
    buffer[RECORD_BYTES - 1] = 10;
    const text = buffer.toString('latin1');
    const cases = [
      ['loop + no-op function (baseline)', (data) => data, buffer],
      ['ringlog w.write(Buffer)', (data) => writer.write(data), buffer],
      ['ringlog w.write(string)', (data) => writer.write(data), text],
      ['fs.writeSync O_APPEND', (data) => fs.writeSync(fd, data), buffer],
    ];
    for (const [, fn, data] of cases) loopNs(fn, data, Math.ceil(calls / 10)); // warm up
    for (const [name] of cases) samples[name] = [];
    for (let rep = 0; rep < reps; rep++) {
      for (const [name, fn, data] of cases) samples[name].push(loopNs(fn, data, calls));
    }
    for (const [name, fn, data] of cases) timed[name] = timedCalls(fn, data, Math.min(calls, 200000));
    timerFloor = measure.timerFloorNs();
    writer.close();
  } finally {
    fs.closeSync(fd);
    await drain.close();
    fs.rmSync(ringLog, { force: true });
    fs.rmSync(appendLog, { force: true });
  }
  const medians = Object.fromEntries(Object.entries(samples).map(([name, v]) => [name, measure.median(v)]));
  return { recordBytes: RECORD_BYTES, callsPerRep: calls, reps, nsPerCallMedian: medians, nsPerCallSamples: samples, timedOneByOneNs: timed, timerFloorNs: timerFloor };
}

module.exports = { measureSingleCall, RECORD_BYTES };
