'use strict';
// Checks a log record by record: what is intact, lost, torn or interleaved, duplicated. Owns
// the verdict on a log and never trusts the log: it pairs each begin marker of `workload.js`
// with the end marker that follows it and accepts a record only when both name the same
// (producer, seq) and the text between them is exactly the body the workload rebuilds.
// Anything else is counted, never hidden:
// - torn: a begin with no matching end, an end with no begin, a mismatched pair, a wrong body
//   (a line that another write split shows up here as fragments);
// - lost: an expected (producer, seq) that no intact record carries;
// - duplicated: intact copies beyond the first;
// - outOfOrder: an intact record below an earlier seq of the same producer;
// - unexpected: an intact record outside the expected producers or sequence numbers.

const fs = require('node:fs');
const workload = require('./workload');

const MARKER = /<(\d\d):(\d{9}):(\d{6}):|:(\d\d):(\d{9})>/g;

function checkText(text, producers, perProducer) {
  const verdict = { expected: producers * perProducer, intact: 0, lost: 0, torn: 0, duplicated: 0, outOfOrder: 0, unexpected: 0 };
  const seen = new Uint8Array(producers * perProducer);
  const lastSeq = new Array(producers).fill(-1);
  let open = null;

  const accept = (producer, seq) => {
    if (producer >= producers || seq >= perProducer) {
      verdict.unexpected++;
      return;
    }
    const key = producer * perProducer + seq;
    if (seen[key]) {
      verdict.duplicated++;
      return;
    }
    seen[key] = 1;
    verdict.intact++;
    if (seq < lastSeq[producer]) verdict.outOfOrder++;
    lastSeq[producer] = Math.max(lastSeq[producer], seq);
  };

  MARKER.lastIndex = 0;
  for (let m = MARKER.exec(text); m !== null; m = MARKER.exec(text)) {
    if (m[1] !== undefined) {
      if (open !== null) verdict.torn++;
      open = { producer: Number(m[1]), seq: Number(m[2]), length: Number(m[3]), offset: m.index + m[0].length };
      continue;
    }
    const producer = Number(m[4]);
    const seq = Number(m[5]);
    if (open === null) {
      verdict.torn++;
      continue;
    }
    const begin = open;
    open = null;
    if (begin.producer !== producer || begin.seq !== seq) {
      verdict.torn++;
      continue;
    }
    const chunk = text.slice(begin.offset, m.index);
    if (chunk.length !== begin.length || chunk !== workload.body(producer, seq, begin.length)) {
      verdict.torn++;
      continue;
    }
    accept(producer, seq);
  }
  if (open !== null) verdict.torn++;
  verdict.lost = verdict.expected - verdict.intact;
  verdict.clean = verdict.intact === verdict.expected && verdict.torn === 0 && verdict.duplicated === 0 && verdict.outOfOrder === 0 && verdict.unexpected === 0;
  return verdict;
}

function checkFile(path, producers, perProducer) {
  return checkText(fs.readFileSync(path, 'latin1'), producers, perProducer);
}

module.exports = { checkText, checkFile };
