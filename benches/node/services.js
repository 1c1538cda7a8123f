'use strict';
// What runs beside the cluster workers and owns the log for its contender: a real
// `ringlog-drain` process, or the primary itself writing what workers `process.send` it.
// Each is started before the clock; `finish()` resolves once every record is in the file,
// with the time it saw that and the CPU the service used. Never writes a record itself
// except as the service.

const fs = require('node:fs');
const { execFileSync, spawn } = require('node:child_process');
const { once } = require('node:events');
const measure = require('./measure');

const START_DEADLINE_MS = 20000;
// A drain whose file stops growing this long before it holds every line has lost some: stop
// waiting and let the integrity check count them.
const STALL_MS = 3000;
const POLL_MS = 1; // a Node timer's shortest

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

// `ringlog-drain --ring RING --out LOG --format raw`. The clock stops when the log holds every
// record (`finish`); the drain's CPU is read from /proc then, and SIGTERM ends it (untimed).
class DrainService {
  constructor(drainBinary, ring, logPath, capacity = null) {
    this.drainBinary = drainBinary;
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
    this.firstSeen = new Map();
    const look = () => {
      const size = fs.statSync(this.logPath, { throwIfNoEntry: false })?.size ?? -1;
      if (!this.firstSeen.has(size)) this.firstSeen.set(size, measure.now());
    };
    look();
    this.watcher = setInterval(look, POLL_MS);
  }

  onWorkerMessage() {
    return false;
  }

  // Resolves with the time the log first had the size at which the drain had written all
  // `expectedLines` records: asks the drain's own counter (`ringlog-drain stat --json`,
  // records_out) until it is complete, then looks up when the size watcher (started with the
  // clock, a stat(2) per timer tick) first saw the file's size, so the primary being busy
  // collecting reports just then does not count. A counter stuck short of the total for a while
  // means lost records: stop there and let the integrity check count them.
  async finish({ expectedLines }) {
    let lastCount = -1;
    let countSince = Date.now();
    for (;;) {
      const count = this.recordsOut();
      if (count >= expectedLines || Date.now() - countSince > STALL_MS) break;
      if (count !== lastCount) {
        lastCount = count;
        countSince = Date.now();
      }
      await sleep(POLL_MS);
    }
    clearInterval(this.watcher);
    const size = fs.statSync(this.logPath).size;
    const endNs = this.firstSeen.get(size) ?? measure.now();
    if (this.child.exitCode !== null || this.child.signalCode !== null) {
      throw new Error(`ringlog-drain exited during the run (${this.child.exitCode ?? this.child.signalCode}): ${this.stderr}`);
    }
    return { endNs, cpuNs: measure.cpuNsOfPid(this.child.pid) - this.cpuAtStart };
  }

  recordsOut() {
    const out = execFileSync(this.drainBinary, ['stat', '--ring', this.ring, '--json'], { encoding: 'utf8' });
    return JSON.parse(out).records_out;
  }

  async close() {
    clearInterval(this.watcher);
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill('SIGTERM');
    const [code, signal] = await this.exited;
    fs.rmSync(segmentPath(this.ring), { force: true });
    if (code !== 0) throw new Error(`ringlog-drain exited with ${code ?? signal}: ${this.stderr}`);
  }
}

module.exports = { NoService, PrimaryWriterService, DrainService, segmentPath };
