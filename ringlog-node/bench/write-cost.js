// Per-call cost of Writer.write and friends, with a real drain running (to /dev/null).
// Reports wall time and this process's CPU time per call (CPU time leaves out the time the
// process spent descheduled on a busy machine). A no-op JS method call is the baseline.
//
//   node bench/write-cost.js [calls]        (RINGLOG_DRAIN: the drain binary)
'use strict'
const { spawn } = require('node:child_process')
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const { Writer } = require('..')

const drainBin = process.env.RINGLOG_DRAIN ||
  path.resolve(__dirname, '..', '..', 'target', 'release', 'ringlog-drain')
const calls = Number(process.argv[2] || 2e6)
const ring = `node-write-cost-${process.pid}`
const drain = spawn(drainBin, ['--ring', ring, '--out', '/dev/null', '--capacity', '64M'],
  { stdio: ['ignore', 'ignore', 'inherit'] })
const w = new Writer(ring, { capacity: 64 << 20 })
const deadline = Date.now() + 10000
while (!w.drainAlive()) {
  if (Date.now() > deadline) throw new Error('the drain did not start')
}

const line = 'x'.repeat(127) + '\n'
const buffer = Buffer.from(line)
const noop = { write (x) { return x.length > 0 } }

function measure (label, f) {
  for (let i = 0; i < 200000; i++) f()
  const cpu0 = process.cpuUsage()
  const t0 = process.hrtime.bigint()
  for (let i = 0; i < calls; i++) f()
  const wall = Number(process.hrtime.bigint() - t0) / calls
  const cpu = process.cpuUsage(cpu0)
  const cpuNs = (cpu.user + cpu.system) * 1e3 / calls
  console.log(`${label.padEnd(34)} ${wall.toFixed(0).padStart(5)} ns wall  ${cpuNs.toFixed(0).padStart(5)} ns cpu`)
}

console.log(`node ${process.version}, ${calls} calls each, load average ${os.loadavg().map(l => l.toFixed(2)).join(' ')}`)
measure('JS no-op method (baseline)', () => noop.write(line))
measure('write(string, 128 B)', () => w.write(line))
measure('write(Buffer, 128 B)', () => w.write(buffer))
measure('writeLine(3, string) (pino path)', () => w.writeLine(3, line))
measure("writeRecord('info', 'svc', string)", () => w.writeRecord('info', 'svc', line))
const rss = process.memoryUsage().rss
for (let i = 0; i < calls; i++) w.write(line)
console.log(`rss after ${calls} more writes: ${((process.memoryUsage().rss - rss) / 1024).toFixed(0)} KiB more`)
console.log(JSON.stringify(w.stats()))
w.close()
drain.kill('SIGTERM')
drain.on('exit', () => fs.rmSync(`/dev/shm/ringlog-${ring}`, { force: true }))
