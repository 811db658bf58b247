/**
 * `mqlog bench`: flags → LoadOptions / ScaleOptions, runs the load, prints the figures as a
 * table (default) or one JSON object on stdout (`--json`). The progress bar goes to stderr,
 * only when stderr is a TTY or `--progress` is given.
 *
 * Exit codes: 0 the run completed (every expected message once, every client connected),
 * 3 figures were reported but the run was incomplete (faults, losses, duplicates, time limit),
 * 2 bad flags, 1 an unexpected failure of the tool.
 */
import { parseArgs } from 'node:util';
import { stderr, stdout } from 'node:process';
import { LoadClientError } from './errors.js';
import { formatFigures } from './figures.js';
import { type LoadOptions, type ParserKind, type ProtocolLevel, type QoS, type ScenarioName } from './options.js';
import { ProgressBar } from './progress.js';
import { runLoad } from './runner.js';
import { runScale, type ScaleOptions } from './scale.js';

export const BENCH_USAGE = `usage: mqlog bench [options]

Load and profiling client for any MQTT broker on this machine (loopback only).

scenario
  --scenario NAME         pairs | fanout | fanin | latency | idle | scale   (default pairs)
  --clients N             pairs: N pubs + N subs; fanout: N subs; fanin: N pubs;
                          latency: N ping-pong clients; idle: N connections  (default 1)
  --messages N            messages per publishing client                      (default 1000)
  --qos 0|1|2             QoS of publishes and subscriptions                  (default 0)
  --payload BYTES         payload size, >= 24 (the header every message carries) (default 64)
  --topic PATTERN         {run} = run id, {i} = publisher index  (default mqlog-bench/{run}/{i})
  --rate N                messages/s per publisher, 0 = unlimited             (default 0)
  --inflight N            unacknowledged QoS 1/2 messages per publisher       (default 64)
  --persistent            clean=false sessions (5.0: session expiry 3600 s)   (default clean)
  --properties            5.0: each PUBLISH carries content type, message expiry and a user property
  --mqtt 3.1.1|5          protocol version                                    (default 3.1.1)
broker
  --host H                loopback address only                               (default 127.0.0.1)
  --port P                                                                    (default 1883)
  --broker-pid PID        report the broker's CPU per delivered message and RSS from /proc
client
  --workers N             spread clients over N worker threads                (default 1)
  --parser scan|mqtt-packet  receive-path PUBLISH framing                     (default scan)
  --connect-timeout-ms MS TCP connect + CONNACK limit per client              (default 10000)
  --connect-concurrency N connection attempts in flight at once               (default 64)
  --keepalive S           keepalive; idle clients ping at this interval       (default 30)
  --hold-ms MS            how long idle holds its connections                 (default 5000)
  --drain-ms MS           quiet time before missing messages count as lost    (default 2000)
  --time-limit-ms MS      hard stop for the whole run                         (default 120000)
  --client-prefix S       client ids are <prefix>-<role><index>               (default mqlog-bench)
  --no-raise-fd-limit     do not raise the soft fd limit
scale (--scenario scale: ramp pairs up in steps, then down)
  --steps N --step-clients N --step-messages N   (defaults 4, 5, 100)
  --out-dir DIR           CSV and SVG files go here                           (default ./mqlog-bench-scale)
output
  --json                  one JSON object of figures on stdout
  --progress              draw the progress bar on stderr even when it is not a terminal
  --no-progress           never draw it
`;

function num(flag: string, v: string | undefined): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (v.trim() === '' || !Number.isFinite(n)) throw new LoadClientError('ERR_LOAD_INVALID_OPTION', `flag --${flag} needs a number, got '${v}'`);
  return n;
}

function setIf<T extends object, K extends keyof T>(o: T, k: K, v: T[K] | undefined): void {
  if (v !== undefined) o[k] = v;
}

/** Parses the flags into run options; throws ERR_LOAD_INVALID_OPTION on a bad flag. */
export function parseBenchArgs(args: string[]): { load: LoadOptions; scale: Omit<ScaleOptions, keyof LoadOptions>; json: boolean; progress: boolean | null; help: boolean } {
  const { values } = parseArgs({
    args,
    strict: true,
    allowPositionals: false,
    options: {
      host: { type: 'string' },
      port: { type: 'string' },
      scenario: { type: 'string' },
      clients: { type: 'string' },
      messages: { type: 'string' },
      qos: { type: 'string' },
      payload: { type: 'string' },
      topic: { type: 'string' },
      rate: { type: 'string' },
      inflight: { type: 'string' },
      persistent: { type: 'boolean' },
      mqtt: { type: 'string' },
      properties: { type: 'boolean' },
      workers: { type: 'string' },
      parser: { type: 'string' },
      'connect-timeout-ms': { type: 'string' },
      'connect-concurrency': { type: 'string' },
      keepalive: { type: 'string' },
      'hold-ms': { type: 'string' },
      'drain-ms': { type: 'string' },
      'time-limit-ms': { type: 'string' },
      'client-prefix': { type: 'string' },
      'broker-pid': { type: 'string' },
      'no-raise-fd-limit': { type: 'boolean' },
      steps: { type: 'string' },
      'step-clients': { type: 'string' },
      'step-messages': { type: 'string' },
      'out-dir': { type: 'string' },
      json: { type: 'boolean' },
      progress: { type: 'boolean' },
      'no-progress': { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  const load: LoadOptions = {};
  setIf(load, 'host', values.host);
  setIf(load, 'port', num('port', values.port));
  setIf(load, 'scenario', values.scenario as ScenarioName | undefined);
  setIf(load, 'clients', num('clients', values.clients));
  setIf(load, 'messages', num('messages', values.messages));
  setIf(load, 'qos', num('qos', values.qos) as QoS | undefined);
  setIf(load, 'payloadBytes', num('payload', values.payload));
  setIf(load, 'topic', values.topic);
  setIf(load, 'ratePerClient', num('rate', values.rate));
  setIf(load, 'inflight', num('inflight', values.inflight));
  if (values.persistent === true) load.clean = false;
  if (values.mqtt !== undefined) {
    const level: Record<string, ProtocolLevel> = { '3.1.1': 4, '4': 4, '5': 5, '5.0': 5 };
    const v = level[values.mqtt];
    if (v === undefined) throw new LoadClientError('ERR_LOAD_INVALID_OPTION', `flag --mqtt must be 3.1.1 or 5, got '${values.mqtt}'`);
    load.protocolVersion = v;
  }
  if (values.properties === true) load.properties = true;
  setIf(load, 'workers', num('workers', values.workers));
  setIf(load, 'parser', values.parser as ParserKind | undefined);
  setIf(load, 'connectTimeoutMs', num('connect-timeout-ms', values['connect-timeout-ms']));
  setIf(load, 'connectConcurrency', num('connect-concurrency', values['connect-concurrency']));
  setIf(load, 'keepaliveS', num('keepalive', values.keepalive));
  setIf(load, 'holdMs', num('hold-ms', values['hold-ms']));
  setIf(load, 'drainMs', num('drain-ms', values['drain-ms']));
  setIf(load, 'timeLimitMs', num('time-limit-ms', values['time-limit-ms']));
  setIf(load, 'clientPrefix', values['client-prefix']);
  setIf(load, 'brokerPid', num('broker-pid', values['broker-pid']));
  if (values['no-raise-fd-limit'] === true) load.raiseFdLimit = false;
  const scale: Omit<ScaleOptions, keyof LoadOptions> = { outDir: values['out-dir'] ?? 'mqlog-bench-scale' };
  setIf(scale, 'steps', num('steps', values.steps));
  setIf(scale, 'stepClients', num('step-clients', values['step-clients']));
  setIf(scale, 'stepMessages', num('step-messages', values['step-messages']));
  const progress = values['no-progress'] === true ? false : values.progress === true ? true : null;
  return { load, scale, json: values.json === true, progress, help: values.help === true };
}

/** Runs `mqlog bench` with its arguments; resolves to the exit code. */
export async function runBenchCli(args: string[]): Promise<number> {
  let parsed: ReturnType<typeof parseBenchArgs>;
  try {
    parsed = parseBenchArgs(args);
  } catch (err) {
    stderr.write(`mqlog bench: ${err instanceof Error ? err.message : String(err)}\n\n${BENCH_USAGE}`);
    return 2;
  }
  if (parsed.help) {
    stdout.write(BENCH_USAGE);
    return 0;
  }
  const showProgress = parsed.progress ?? stderr.isTTY === true;
  const bar = showProgress ? new ProgressBar(stderr) : null;
  try {
    if (parsed.load.scenario === 'scale') {
      const { scenario: _s, clients: _c, messages: _m, ...load } = parsed.load;
      const result = await runScale(
        { ...load, ...parsed.scale },
        bar === null ? {} : { onProgress: (step, total, clients, p) => bar.update(`step ${step}/${total} ${clients} pairs ${p.phase}`, p.phase === 'connect' ? p.connected : p.delivered, p.phase === 'connect' ? p.clients : p.expected) },
      );
      bar?.done();
      const incomplete = result.steps.some((f) => !f.complete);
      if (parsed.json) {
        stdout.write(`${JSON.stringify({ tool: 'mqlog-bench', scenario: 'scale', outDir: result.outDir, files: result.files, steps: result.stepRows, complete: !incomplete })}\n`);
      } else {
        const cols = ['step', 'phase', 'clients', 'messagesPerClient', 'connected', 'setupMedianMs', 'deliveredPerSec', 'latencyMedianUs', 'latencyP99Us', 'lost', 'errors'] as const;
        stdout.write(`${cols.join('\t')}\n`);
        for (const r of result.stepRows) stdout.write(`${cols.map((c) => (typeof r[c] === 'number' ? Number((r[c] as number).toFixed(1)) : (r[c] ?? ''))).join('\t')}\n`);
        stdout.write(`files:\n${result.files.map((f) => `  ${f}`).join('\n')}\n`);
      }
      return incomplete ? 3 : 0;
    }
    const figures = await runLoad(
      parsed.load,
      bar === null ? {} : { onProgress: (p) => bar.update(p.phase, p.phase === 'connect' ? p.connected : p.delivered, p.phase === 'connect' ? p.clients : p.expected, `${p.connected} connected, ${p.delivered} delivered`) },
    );
    bar?.done();
    if (parsed.json) {
      const { clients: _clients, ...rest } = figures;
      stdout.write(`${JSON.stringify(rest)}\n`);
    } else stdout.write(formatFigures(figures));
    return figures.complete ? 0 : 3;
  } catch (err) {
    bar?.done();
    if (err instanceof LoadClientError && err.code === 'ERR_LOAD_INVALID_OPTION') {
      stderr.write(`mqlog bench: ${err.message}\n`);
      return 2;
    }
    throw err;
  }
}
