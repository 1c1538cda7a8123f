'use strict';
// The contenders: what each cluster worker opens to log into the shared file, and which
// service (if any) runs beside the workers. One entry per contender; the harness and the
// workers look them up by name. Owns no timing and no checking.
//
// open(run) runs in the worker and resolves to { log(call), close() }: `log` makes one logging
// call (timed by the worker), `close` resolves once everything this worker logged is in the
// file or handed to the service.

const path = require('node:path');
const { once } = require('node:events');
const services = require('./services');

const REPO = path.resolve(__dirname, '..', '..');

// The ringlog package: an installed `ringlog` if there is one, else the repo's ringlog-node
// (built by its own `npm install`).
function requireRinglog() {
  try {
    return require('ringlog');
  } catch (error) {
    if (error.code !== 'MODULE_NOT_FOUND') throw error;
    return require(path.join(REPO, 'ringlog-node'));
  }
}

// `pino(destination)`, as each destination's users write it; a plain `{ write }` object is only
// taken as the second argument.
function pinoLogger(destination, options) {
  const pino = require('pino');
  const logger = options ? pino(options, destination) : pino(destination);
  return (call) => logger.info(call.fields, call.message);
}

const nextTurn = () => new Promise((resolve) => setImmediate(resolve));

const CONTENDERS = {
  'pino sync': {
    needs: 'pino',
    async open(run) {
      const pino = require('pino');
      const destination = pino.destination({ dest: run.logPath, sync: true });
      return { log: pinoLogger(destination), close: async () => destination.flushSync() };
    },
    startService: async () => new services.NoService(),
  },

  'pino async': {
    needs: 'pino',
    async open(run) {
      const pino = require('pino');
      const destination = pino.destination({ dest: run.logPath, sync: false });
      await once(destination, 'ready');
      const close = async () => {
        const closed = once(destination, 'close');
        destination.end();
        await closed;
      };
      return { log: pinoLogger(destination), close };
    },
    startService: async () => new services.NoService(),
  },

  'pino.transport': {
    needs: 'pino',
    async open(run) {
      const pino = require('pino');
      const transport = pino.transport({ target: 'pino/file', options: { destination: run.logPath } });
      await once(transport, 'ready');
      const close = async () => {
        const closed = once(transport, 'close');
        transport.end();
        await closed;
      };
      return { log: pinoLogger(transport), close };
    },
    startService: async () => new services.NoService(),
  },

  'winston File': {
    needs: 'winston',
    async open(run) {
      const winston = require('winston');
      const file = new winston.transports.File({ filename: run.logPath });
      const logger = winston.createLogger({ transports: [file] });
      // Ending the logger while it still holds lines for the transport makes winston write
      // after end; so first let it hand everything to the file stream, then end and wait.
      const close = async () => {
        while (logger.readableLength > 0 || logger.writableLength > 0 || file.writableLength > 0) await nextTurn();
        const finished = once(file, 'finish');
        logger.end();
        await finished;
      };
      return { log: (call) => logger.info(call.message, call.fields), close };
    },
    startService: async () => new services.NoService(),
  },

  'process.send': {
    needs: 'pino',
    async open() {
      const log = pinoLogger({ write: (line) => process.send(line) }, {});
      return { log, close: async () => {} };
    },
    startService: async (run) => new services.PrimaryWriterService(run.logPath),
  },

  ringlog: {
    needs: 'ringlog',
    async open(run) {
      const ringlog = requireRinglog();
      return { log: pinoLogger(ringlog.destination({ ring: run.ring })), close: async () => {} };
    },
    startService: async (run) => new services.DrainService(run.drainBinary, run.ring, run.logPath).started(),
  },
};

// Why a contender cannot run here, or null.
function missing(name) {
  const needs = CONTENDERS[name].needs;
  try {
    if (needs === 'ringlog') requireRinglog();
    else require.resolve(needs);
    return null;
  } catch (error) {
    return `cannot load ${needs}: ${error.message.split('\n')[0]}`;
  }
}

module.exports = { CONTENDERS, missing, requireRinglog, REPO };
