'use strict';
// What runs beside the cluster workers and owns the log for its contender: a real
// `ringlog-drain` process, or the primary itself writing what workers `process.send` it.
// Each is started before the clock; `finish()` resolves once every record is in the file,
// with the time it saw that and the CPU the service used. Never writes a record itself
// except as the service.

const fs = require('node:fs');
const { spawn } = require('node:child_process');
const { once } = require('node:events');
const measure = require('./measure');

const START_DEADLINE_MS = 20000;
// A drain whose file stops growing this long before it holds every line has lost some: stop
// waiting and let the integrity check count them.
const STALL_MS = 3000;
const POLL_MS = 1;

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const segmentPath = (ring) => `/dev/shm/ringlog-${ring}`;

// Contenders whose workers write the file themselves: everything is in the file when the
// last worker has closed its logger.
class NoService {
  clockStarts() {}
  onWorkerMessage() {
    return false;
  }
  async finish({ lastWorkerEndNs }) {
    return { endNs: lastWorkerEndNs, cpuNs: 0 };
  }
  async close() {}
}

// The usual cluster workaround: workers `process.send` each line, the primary appends it with
// one write(2) (O_APPEND). Its CPU is the primary's over the run.
class PrimaryWriterService {
  constructor(logPath) {
    this.fd = fs.openSync(logPath, 'a');
  }
  clockStarts() {
    this.cpuStart = process.cpuUsage();
  }
  onWorkerMessage(message) {
    if (typeof message !== 'string') return false;
    fs.writeSync(this.fd, message);
    return true;
  }
  async finish({ reportsReceivedNs }) {
    // Each worker's report follows its last line on the same channel, so once every report is
    // in, every line is written.
    return { endNs: reportsReceivedNs, cpuNs: measure.cpuNsSelf(this.cpuStart) };
  }
  async close() {
    fs.closeSync(this.fd);
  }
}

// `ringlog-drain --ring RING --out LOG --format raw`. Everything is in the file when it holds
// one line per record (a pino line is one JSON object ending in its only newline); the clock
// stops there, the drain's CPU is read from /proc, then SIGTERM ends it (not timed).
class DrainService {
  constructor(drainBinary, ring, logPath, capacity = null) {
    this.ring = ring;
    this.logPath = logPath;
    this.stderr = '';
    const extra = capacity ? ['--capacity', capacity] : [];
    this.child = spawn(drainBinary, ['--ring', ring, '--out', logPath, '--format', 'raw', ...extra], { stdio: ['ignore', 'ignore', 'pipe'] });
    this.child.stderr.on('data', (chunk) => (this.stderr += chunk));
    this.exited = once(this.child, 'exit');
  }

  async started() {
    const deadline = Date.now() + START_DEADLINE_MS;
    while (!fs.existsSync(segmentPath(this.ring))) {
      if (this.child.exitCode !== null) throw new Error(`ringlog-drain exited with ${this.child.exitCode}: ${this.stderr}`);
      if (Date.now() > deadline) throw new Error(`ringlog-drain did not create ring ${this.ring} in ${START_DEADLINE_MS} ms`);
      await sleep(5);
    }
    return this;
  }

  // The drain's CPU so far (creating the ring, starting up) is set-up, not the run's.
  clockStarts() {
    this.cpuAtStart = measure.cpuNsOfPid(this.child.pid);
  }

  onWorkerMessage() {
    return false;
  }

  async finish({ expectedLines }) {
    const fd = fs.openSync(this.logPath, 'r');
    const buffer = Buffer.allocUnsafe(1 << 20);
    let offset = 0;
    let lines = 0;
    let lastGrowth = Date.now();
    try {
      while (lines < expectedLines && Date.now() - lastGrowth < STALL_MS) {
        const n = fs.readSync(fd, buffer, 0, buffer.length, offset);
        if (n === 0) {
          await sleep(POLL_MS);
          continue;
        }
        lastGrowth = Date.now();
        offset += n;
        const view = buffer.subarray(0, n);
        for (let at = view.indexOf(10); at !== -1; at = view.indexOf(10, at + 1)) lines++;
      }
    } finally {
      fs.closeSync(fd);
    }
    const endNs = measure.now();
    if (this.child.exitCode !== null || this.child.signalCode !== null) {
      throw new Error(`ringlog-drain exited during the run (${this.child.exitCode ?? this.child.signalCode}): ${this.stderr}`);
    }
    return { endNs, cpuNs: measure.cpuNsOfPid(this.child.pid) - this.cpuAtStart };
  }

  async close() {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill('SIGTERM');
    const [code, signal] = await this.exited;
    fs.rmSync(segmentPath(this.ring), { force: true });
    if (code !== 0) throw new Error(`ringlog-drain exited with ${code ?? signal}: ${this.stderr}`);
  }
}

module.exports = { NoService, PrimaryWriterService, DrainService, segmentPath };
