'use strict';
// What the harness measures besides integrity: per-call latency quantiles, the timer's own
// floor, the CPU of a process that is not our child's report (the drain, read from /proc),
// and the machine it ran on. Owns no process and no file.

const fs = require('node:fs');
const os = require('node:os');

const now = process.hrtime.bigint;

// What `hrtime.bigint()` twice around nothing reads: the timer's share of every latency.
function timerFloorNs(samples = 20000) {
  const gaps = new Float64Array(samples);
  for (let i = 0; i < samples; i++) {
    const start = now();
    gaps[i] = Number(now() - start);
  }
  gaps.sort();
  return { min: gaps[0], p50: quantile(gaps, 0.5) };
}

// Nearest-rank quantile of a sorted array.
function quantile(sorted, q) {
  if (sorted.length === 0) return 0;
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.round(q * sorted.length) - 1));
  return sorted[rank];
}

function latencySummary(values) {
  const sorted = Float64Array.from(values).sort();
  return {
    calls: sorted.length,
    p50: quantile(sorted, 0.5),
    p99: quantile(sorted, 0.99),
    p999: quantile(sorted, 0.999),
    max: sorted.length ? sorted[sorted.length - 1] : 0,
  };
}

function median(values) {
  const sorted = [...values].sort((a, b) => a - b);
  if (sorted.length === 0) return 0;
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2;
}

// CPU time of another process, all its threads, in ns (scheduler's own accounting, ns precise).
function cpuNsOfPid(pid) {
  let total = 0;
  for (const tid of fs.readdirSync(`/proc/${pid}/task`)) {
    try {
      total += Number(fs.readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'latin1').split(' ')[0]);
    } catch (error) {
      if (error.code !== 'ENOENT') throw error; // a thread that just exited
    }
  }
  return total;
}

// This process's CPU (user + system, every thread) in ns since `since` (a process.cpuUsage()).
function cpuNsSelf(since) {
  const usage = process.cpuUsage(since);
  return (usage.user + usage.system) * 1000;
}

function machine() {
  return {
    cpus: os.cpus().length,
    cpuModel: os.cpus()[0]?.model ?? '',
    kernel: os.release(),
    node: process.version,
    loadAverage: os.loadavg().map((x) => Math.round(x * 100) / 100),
    uptimeS: Math.round(os.uptime()),
    utc: new Date().toISOString(),
  };
}

module.exports = { now, timerFloorNs, quantile, latencySummary, median, cpuNsOfPid, cpuNsSelf, machine };
