/**
 * Launchers of the brokers the side-by-side benchmark compares: each finds out whether its
 * broker can run here (and why not), then starts it as a child process listening on
 * 127.0.0.1 at a free port, optionally pinned to one CPU with `taskset -c`, and stops it.
 *
 * - aedes:     the npm devDependency, through aedes-server.ts (in-memory, defaults)
 * - mosquitto: Debian's package, found or installed by benches/tools/ensure-mosquitto.sh,
 *              with a generated config (see mosquittoConfig)
 * - mqlog:     `mqlog start` from dist/ when built, else from the sources through tsx;
 *              "not built yet" when it does not come up
 * - relay:     not a broker: benches/brokers/relay.ts --batch, Node's own floor (no log, no
 *              sessions) with mqtt-packet's parser; only when asked for (`--brokers ...,relay`)
 * - relay-scan: the same relay with --scan, PUBLISH/PUBACK/PINGREQ read and PUBLISH headers
 *              built by hand as mqlog's connections do: the floor for mqlog (issue 4's
 *              "hand-written framing scanner" relay); only when asked for
 * - relay-store: relay-scan plus --store: every PUBLISH written to one append-only file per
 *              loop turn and QoS 1 acknowledged after a group-commit fdatasync, the least any
 *              broker that stores messages durably pays on this machine; only when asked for
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { benchDataDir } from '../lib/data-dir.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
/** How long a broker may take to listen after it was spawned, in ms. */
const READY_TIMEOUT_MS = 15_000;
/** How long a broker may take to exit after SIGTERM before it is killed, in ms. */
const STOP_TIMEOUT_MS = 5_000;

export type BrokerName = 'mqlog' | 'aedes' | 'mosquitto' | 'relay' | 'relay-scan' | 'relay-store';
/** Every name a run may ask for, in the order tables list them. */
export const BROKER_NAMES: readonly BrokerName[] = ['mqlog', 'aedes', 'mosquitto', 'relay', 'relay-scan', 'relay-store'];
/** What a run compares when it names no brokers. */
export const DEFAULT_BROKERS: readonly BrokerName[] = ['mqlog', 'aedes', 'mosquitto'];

/** Whether a broker can run here. */
export type Availability = { ok: true; version: string; detail: string } | { ok: false; reason: string };

/** A broker process that is listening. */
export interface RunningBroker {
  name: BrokerName;
  pid: number;
  port: number;
  stop(): Promise<void>;
}

export interface StartOptions {
  /** CPU to pin the broker to with `taskset -c`, or null for no pinning. */
  cpu: number | null;
}

export interface BrokerLauncher {
  name: BrokerName;
  detect(): Promise<Availability>;
  start(opts: StartOptions): Promise<RunningBroker>;
}

function run(cmd: string, args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(cmd, args, { encoding: 'utf8', timeout: 600_000 }, (err, stdout, stderr) => {
      const code = err === null ? 0 : typeof err.code === 'number' ? err.code : 1;
      resolve({ code, stdout, stderr });
    });
  });
}

/** A free loopback port: bound at port 0, then released (for brokers that cannot bind 0). */
export async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as net.AddressInfo;
  await new Promise<void>((r) => server.close(() => r()));
  return port;
}

function pinned(cpu: number | null, cmd: string, args: string[]): [string, string[]] {
  return cpu === null ? [cmd, args] : ['taskset', ['-c', String(cpu), cmd, ...args]];
}

/** Resolves once `port` accepts a TCP connection. */
async function waitForPort(port: number, child: ChildProcess, deadlineMs: number): Promise<void> {
  while (performance.now() < deadlineMs) {
    if (child.exitCode !== null) throw new Error(`exited with code ${child.exitCode}`);
    const ok = await new Promise<boolean>((resolve) => {
      const s = net.connect({ host: '127.0.0.1', port }, () => {
        s.destroy();
        resolve(true);
      });
      s.on('error', () => resolve(false));
    });
    if (ok) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`not listening on ${port} after ${READY_TIMEOUT_MS} ms`);
}

/** Spawns a broker and waits for `readyRe` (capturing the port) on its stderr, or for `port` to accept. */
async function spawnBroker(name: BrokerName, cpu: number | null, cmd: string, args: string[], ready: { readyRe: RegExp } | { port: number }, cleanup: () => Promise<void>): Promise<RunningBroker> {
  const [c, a] = pinned(cpu, cmd, args);
  const child = spawn(c, a, { cwd: ROOT, stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  const deadline = performance.now() + READY_TIMEOUT_MS;
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  try {
    let port: number;
    if ('readyRe' in ready) {
      port = await new Promise<number>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`no ready line after ${READY_TIMEOUT_MS} ms`)), READY_TIMEOUT_MS);
        child.stderr?.on('data', (d: Buffer) => {
          stderr += d.toString();
          const m = ready.readyRe.exec(stderr);
          if (m !== null) {
            clearTimeout(timer);
            resolve(Number(m[1]));
          }
        });
        void exited.then((code) => {
          clearTimeout(timer);
          reject(new Error(`exited with code ${code}: ${stderr.trim().split('\n').slice(-3).join(' | ')}`));
        });
      });
    } else {
      child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
      await waitForPort(ready.port, child, deadline);
      port = ready.port;
    }
    if (child.pid === undefined) throw new Error('no pid');
    const pid = child.pid;
    // Keep draining stderr so a chatty broker never blocks on a full pipe.
    child.stderr?.resume();
    return {
      name,
      pid,
      port,
      stop: async () => {
        if (child.exitCode === null && child.signalCode === null) {
          child.kill('SIGTERM');
          const timer = setTimeout(() => child.kill('SIGKILL'), STOP_TIMEOUT_MS);
          await exited;
          clearTimeout(timer);
        }
        await cleanup();
      },
    };
  } catch (err) {
    child.kill('SIGKILL');
    await cleanup();
    throw new Error(`${name} did not start: ${(err as Error).message}`, { cause: err });
  }
}

const none = async (): Promise<void> => {};

export const aedesLauncher: BrokerLauncher = {
  name: 'aedes',
  async detect() {
    try {
      const pkg = JSON.parse(await readFile(join(ROOT, 'node_modules/aedes/package.json'), 'utf8')) as { version: string };
      return { ok: true, version: pkg.version, detail: 'npm devDependency, in-memory persistence, defaults' };
    } catch {
      return { ok: false, reason: 'aedes is not installed (npm install)' };
    }
  },
  start: ({ cpu }) =>
    spawnBroker('aedes', cpu, process.execPath, ['--import=tsx', join(ROOT, 'benches/brokers/aedes-server.ts'), '0'], { readyRe: /aedes ready on [^:]+:(\d+)/ }, none),
};

/**
 * The floor relay, with mqtt-packet's parser (`relay`), the hand-written scanner
 * (`relay-scan`), or the scanner plus durable storage (`relay-store`, in a fresh directory
 * on the disk mqlog's data goes to, removed when it stops).
 */
function relayLauncherOf(name: 'relay' | 'relay-scan' | 'relay-store', flags: readonly string[], detail: string, withStore = false): BrokerLauncher {
  return {
    name,
    async detect() {
      return { ok: true, version: 'floor', detail };
    },
    async start({ cpu }) {
      const dir = withStore ? await benchDataDir('mqlog-bench-relay-') : null;
      const store = dir === null ? [] : ['--store', dir];
      return spawnBroker(
        name,
        cpu,
        process.execPath,
        ['--import=tsx', join(ROOT, 'benches/brokers/relay.ts'), '--port', '0', ...flags, ...store],
        { readyRe: /relay ready on [^:]+:(\d+)/ },
        dir === null ? none : () => rm(dir, { recursive: true, force: true }),
      );
    },
  };
}

export const relayLauncher = relayLauncherOf('relay', ['--batch'], "benches/brokers/relay.ts --batch: Node's floor with mqtt-packet, no log, no sessions, not a broker");
export const relayScanLauncher = relayLauncherOf(
  'relay-scan',
  ['--batch', '--scan'],
  "benches/brokers/relay.ts --batch --scan: Node's floor with a hand-written PUBLISH/PUBACK scanner, no log, no sessions, not a broker",
);
export const relayStoreLauncher = relayLauncherOf(
  'relay-store',
  ['--batch', '--scan'],
  'benches/brokers/relay.ts --batch --scan --store: relay-scan plus one append-only file written per loop turn, QoS 1 acknowledged after a group-commit fdatasync; the durable floor, not a broker',
  true,
);

/** The mosquitto config the benchmark runs with, and why each line is there. */
export function mosquittoConfig(port: number): string {
  return [
    '# generated by benches/brokers/launchers.ts for the side-by-side benchmark',
    `listener ${port} 127.0.0.1`,
    'allow_anonymous true',
    '# persistence off: mosquitto only snapshots on an interval anyway (kill -9 loses acknowledged',
    '# QoS 1 messages, see ANCHORS); the benchmark measures its message path',
    'persistence false',
    '# no per-client queue limit: with the default (1000) it drops QoS 1 messages in fan-in,',
    '# and a broker that drops messages does less work than one that delivers them',
    'max_queued_messages 0',
    'log_dest stderr',
    'log_type error',
    'log_type warning',
    '',
  ].join('\n');
}

let mosquittoPath: string | null = null;

export const mosquittoLauncher: BrokerLauncher = {
  name: 'mosquitto',
  async detect() {
    const r = await run('sh', [join(ROOT, 'benches/tools/ensure-mosquitto.sh')]);
    if (r.code !== 0) return { ok: false, reason: r.stderr.trim().split('\n').pop() ?? 'ensure-mosquitto.sh failed' };
    mosquittoPath = r.stdout.trim();
    const v = await run(mosquittoPath, ['-h']);
    const version = /mosquitto version (\S+)/.exec(v.stdout + v.stderr)?.[1] ?? 'unknown';
    return { ok: true, version, detail: `${mosquittoPath}, persistence false, max_queued_messages 0` };
  },
  async start({ cpu }) {
    const bin = mosquittoPath ?? '/usr/sbin/mosquitto';
    const dir = await mkdtemp(join(tmpdir(), 'mqlog-bench-mosquitto-'));
    const port = await freePort();
    const conf = join(dir, 'mosquitto.conf');
    await writeFile(conf, mosquittoConfig(port));
    return spawnBroker('mosquitto', cpu, bin, ['-c', conf], { port }, () => rm(dir, { recursive: true, force: true }));
  },
};

/** Newest modification time of the .ts files under `dirs` (ms since epoch). */
function newestSource(dirs: readonly string[]): number {
  let newest = 0;
  const walk = (dir: string): void => {
    if (!existsSync(dir)) return;
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      const p = join(dir, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.name.endsWith('.ts')) newest = Math.max(newest, statSync(p).mtimeMs);
    }
  };
  for (const d of dirs) walk(join(ROOT, d));
  return newest;
}

/**
 * How mqlog is started: the built CLI (what `npm start` runs) when dist/ is at least as new as
 * the sources, else the sources through tsx (a stale build would benchmark old code).
 */
export function mqlogCommand(): [string, string[]] {
  const built = join(ROOT, 'dist/src/cli/main.js');
  const fresh = existsSync(built) && statSync(built).mtimeMs >= newestSource(['src', 'router', 'commitlog']);
  return fresh ? [process.execPath, [built]] : [process.execPath, ['--import=tsx', join(ROOT, 'src/cli/main.ts')]];
}

/** Starts mqlog with a fresh data directory and its default durability (fsync per batch). */
async function startMqlog(cpu: number | null): Promise<RunningBroker> {
  const dir = await benchDataDir('mqlog-bench-data-');
  const [cmd, pre] = mqlogCommand();
  return spawnBroker(
    'mqlog',
    cpu,
    cmd,
    [...pre, 'start', '--host', '127.0.0.1', '--port', '0', '--data-dir', dir, '--log-level', 'warn', '--sys-interval', '0'],
    { readyRe: /mqlog ready on [^:\s]+:(\d+)/ },
    () => rm(dir, { recursive: true, force: true }),
  );
}

export const mqlogLauncher: BrokerLauncher = {
  name: 'mqlog',
  async detect() {
    try {
      const b = await startMqlog(null);
      await b.stop();
      const [cmd, pre] = mqlogCommand();
      const pkg = JSON.parse(await readFile(join(ROOT, 'package.json'), 'utf8')) as { version: string };
      return { ok: true, version: pkg.version, detail: `${[cmd, ...pre].join(' ').replace(ROOT, '')} start, fsync per batch (default)` };
    } catch (err) {
      return { ok: false, reason: `mqlog broker not built yet, skipped (${(err as Error).message.slice(0, 160)})` };
    }
  },
  start: ({ cpu }) => startMqlog(cpu),
};

export const LAUNCHERS: Record<BrokerName, BrokerLauncher> = { mqlog: mqlogLauncher, aedes: aedesLauncher, mosquitto: mosquittoLauncher, relay: relayLauncher, 'relay-scan': relayScanLauncher, 'relay-store': relayStoreLauncher };
