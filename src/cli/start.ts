/**
 * `mqlog start`: turns flags and an optional JSON config file into BrokerOptions (flags win),
 * starts the broker with a pino logger, and shuts it down gracefully on SIGINT/SIGTERM.
 */
import { readFile } from 'node:fs/promises';
import process, { stderr, stdout } from 'node:process';
import { parseArgs } from 'node:util';
import pino from 'pino';
import type { BrokerOptions, LogLevel } from '../config.js';
import { BrokerError } from '../errors.js';
import { Broker } from '../server/broker.js';

const HELP = `usage: mqlog start [options]

  --host H               address to listen on            (default 127.0.0.1)
  --port P               TCP port, 0 = any free one      (default 1883)
  --data-dir D           commit log directory            (default ./data)
  --config FILE          JSON file with the same options in camelCase; flags override it
  --log-level L          fatal|error|warn|info|debug|trace|silent (default info)
  --fsync MODE           batch | never | <ms>: when an acknowledged message is on disk
                         (default batch: fsync before PUBACK)
  --deliver-after WHEN   write | sync: when subscribers get QoS 0/1 messages, once
                         written to the OS or only after the fsync (default write;
                         QoS 2 always waits for the fsync)
  --qos0-sync-ms MS      with fsync batch: QoS 0 messages share the next QoS 1/2
                         message's fsync, or wait at most MS, 0 = own fsync (default 1000)
  --segment-bytes N      segment size before rolling     (default 64 MiB)
  --retention-bytes N    per-topic size limit, 0 = none  (default 0)
  --retention-hours N    per-topic age limit, 0 = none   (default 0)
  --no-journal           with fsync batch: each topic fdatasyncs its own files instead
                         of one journal for all topics, one fdatasync per event-loop
                         turn (default: the journal)
  --commit-delay-ms MS   with the journal: an fdatasync round no publisher waits on
                         starts at most every MS ms, 0 = at once (default 1)
  --max-open-files N     descriptors the topic logs keep open, 2 per active topic
                         (default 0 = half the process's open-file limit)
  --max-packet-bytes N   largest packet accepted         (default 1 MiB)
  --max-inflight N       unacknowledged QoS1/2 per client (default 256)
  --sys-interval S       seconds between $SYS updates, 0 = off (default 10)
`;

function num(flag: string, v: string | undefined): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isFinite(n)) throw new BrokerError('ERR_CONFIG_INVALID', `--${flag} must be a number, got '${v}'`);
  return n;
}

/** Parses `mqlog start` flags into options (config file merged underneath). */
export async function parseStartArgs(args: string[]): Promise<BrokerOptions | 'help'> {
  const { values } = parseArgs({
    args,
    options: {
      host: { type: 'string' },
      port: { type: 'string' },
      'data-dir': { type: 'string' },
      config: { type: 'string' },
      'log-level': { type: 'string' },
      fsync: { type: 'string' },
      'deliver-after': { type: 'string' },
      'qos0-sync-ms': { type: 'string' },
      'segment-bytes': { type: 'string' },
      'retention-bytes': { type: 'string' },
      'retention-hours': { type: 'string' },
      journal: { type: 'boolean' },
      'commit-delay-ms': { type: 'string' },
      'max-open-files': { type: 'string' },
      'max-packet-bytes': { type: 'string' },
      'max-inflight': { type: 'string' },
      'sys-interval': { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
    strict: true,
    allowNegative: true,
  });
  if (values.help) return 'help';
  let file: BrokerOptions = {};
  if (values.config !== undefined) {
    try {
      file = JSON.parse(await readFile(values.config, 'utf8')) as BrokerOptions;
    } catch (err) {
      throw new BrokerError('ERR_CONFIG_FILE', `cannot read config file ${values.config}: ${(err as Error).message}`, { cause: err });
    }
  }
  const fsync = values.fsync === undefined ? undefined : values.fsync === 'batch' || values.fsync === 'never' ? values.fsync : num('fsync', values.fsync);
  const flags: BrokerOptions = {};
  const set = <K extends keyof BrokerOptions>(k: K, v: BrokerOptions[K] | undefined) => {
    if (v !== undefined) flags[k] = v;
  };
  set('host', values.host);
  set('port', num('port', values.port));
  set('dataDir', values['data-dir']);
  set('logLevel', values['log-level'] as LogLevel | undefined);
  set('fsync', fsync);
  set('deliverAfter', values['deliver-after'] as BrokerOptions['deliverAfter']);
  set('qos0SyncMs', num('qos0-sync-ms', values['qos0-sync-ms']));
  set('segmentBytes', num('segment-bytes', values['segment-bytes']));
  set('retentionBytes', num('retention-bytes', values['retention-bytes']));
  set('retentionHours', num('retention-hours', values['retention-hours']));
  set('journal', values.journal);
  set('commitDelayMs', num('commit-delay-ms', values['commit-delay-ms']));
  set('maxOpenFiles', num('max-open-files', values['max-open-files']));
  set('maxPacketBytes', num('max-packet-bytes', values['max-packet-bytes']));
  set('maxInflight', num('max-inflight', values['max-inflight']));
  set('sysIntervalSec', num('sys-interval', values['sys-interval']));
  return { ...file, ...flags };
}

export async function runStart(args: string[]): Promise<number> {
  let options: BrokerOptions | 'help';
  try {
    options = await parseStartArgs(args);
  } catch (err) {
    stderr.write(`mqlog start: ${(err as Error).message}\n${HELP}`);
    return 2;
  }
  if (options === 'help') {
    stdout.write(HELP);
    return 0;
  }
  const logger = pino({ level: options.logLevel ?? 'info', base: { pid: process.pid } });
  let broker: Broker;
  try {
    broker = await Broker.start(options, logger);
  } catch (err) {
    const code = (err as { code?: string }).code;
    logger.fatal({ err, code }, (err as Error).message);
    stderr.write(`mqlog start: ${(err as Error).message}\n`);
    return 1;
  }
  // print the bound port in a machine-readable line for scripts (tests, benchmarks)
  stderr.write(`mqlog ready on ${broker.options.host}:${broker.port}\n`);
  return new Promise<number>((resolveExit) => {
    let stopping = false;
    const stop = (signal: string) => {
      if (stopping) return;
      stopping = true;
      logger.info({ signal }, 'shutting down');
      broker.close().then(
        () => resolveExit(0),
        (err: unknown) => {
          logger.error({ err }, 'shutdown failed');
          resolveExit(1);
        },
      );
    };
    process.once('SIGINT', () => stop('SIGINT'));
    process.once('SIGTERM', () => stop('SIGTERM'));
  });
}
