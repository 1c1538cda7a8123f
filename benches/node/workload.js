'use strict';
// The records every contender logs: what worker `p` logs as its call `seq`. This module owns
// the record text and nothing else. Each record is a pure function of (producer, seq) and the
// workload, so the integrity checker rebuilds it from the markers it finds in a log:
//
//     <PP:SSSSSSSSS:LLLLLL:BODY:PP:SSSSSSSSS>
//
// PP the worker, S... the sequence number, L... the body's length, BODY letters whose phase
// depends on (producer, seq). It is the message of a pino call that also carries a small
// object (`{ worker, seq, route }`), about 120 bytes of payload before pino adds its own
// fields. In the "mix" workload every MIX_EVERY-th record has a 64 KiB body.

const MESSAGE_CHARS = 80;
const MIX_EVERY = 16;
const LARGE_BODY = 64 * 1024;
const WORKLOADS = ['small', 'mix'];

const ALPHABET = 'abcdefghijklmnopqrstuvwxyz';
const BEGIN_CHARS = '<00:000000000:000000:'.length;
const END_CHARS = ':00:000000000>'.length;
const SMALL_BODY = MESSAGE_CHARS - BEGIN_CHARS - END_CHARS;

const pad = (n, width) => String(n).padStart(width, '0');
const beginMarker = (producer, seq, length) => `<${pad(producer, 2)}:${pad(seq, 9)}:${pad(length, 6)}:`;
const endMarker = (producer, seq) => `:${pad(producer, 2)}:${pad(seq, 9)}>`;

// Letters only: a body never contains a digit, '<', ':' or '>', so it cannot look like a marker.
function body(producer, seq, length) {
  const phase = (producer * 7 + seq) % ALPHABET.length;
  return ALPHABET.repeat(Math.floor(length / ALPHABET.length) + 2).slice(phase, phase + length);
}

const isLarge = (workload, seq) => workload === 'mix' && seq % MIX_EVERY === MIX_EVERY - 1;
const bodyLength = (workload, seq) => (isLarge(workload, seq) ? LARGE_BODY : SMALL_BODY);

function recordText(producer, seq, length) {
  return beginMarker(producer, seq, length) + body(producer, seq, length) + endMarker(producer, seq);
}

// What a worker logs, built before the clock starts: the message and the object pino merges.
function logCalls(workload, producer, count) {
  const calls = new Array(count);
  for (let seq = 0; seq < count; seq++) {
    calls[seq] = {
      fields: { worker: producer, seq, route: '/api/v1/orders' },
      message: recordText(producer, seq, bodyLength(workload, seq)),
    };
  }
  return calls;
}

module.exports = { WORKLOADS, MIX_EVERY, LARGE_BODY, MESSAGE_CHARS, beginMarker, endMarker, body, recordText, logCalls };
