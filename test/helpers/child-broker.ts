/**
 * Runs `mqlog start` as a child process (through tsx), for tests that must kill -9 the broker
 * or check what the CLI prints. Resolves once the broker prints its "ready" line.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const MAIN = fileURLToPath(new URL('../../src/cli/main.ts', import.meta.url));

export interface ChildBroker {
  child: ChildProcess;
  port: number;
  output(): string;
  exited: Promise<number | null>;
}

export function spawnBroker(args: string[], timeoutMs = 15_000): Promise<ChildBroker> {
  const child = spawn(process.execPath, ['--import=tsx', MAIN, 'start', '--port', '0', '--log-level', 'warn', '--sys-interval', '0', ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  // a timed-out test skips its teardown: never leave a broker running behind the test process
  const reap = () => child.kill('SIGKILL');
  process.once('exit', reap);
  const exited = new Promise<number | null>((resolve) =>
    child.on('exit', (code) => {
      process.off('exit', reap);
      resolve(code);
    }),
  );
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`broker did not start within ${timeoutMs} ms:\n${out}`));
    }, timeoutMs);
    const onData = (chunk: Buffer) => {
      out += chunk.toString();
      const m = /mqlog ready on [^:]+:(\d+)/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve({ child, port: Number(m[1]), output: () => out, exited });
      }
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', onData);
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`broker exited with ${code} before it was ready:\n${out}`));
    });
  });
}

/** Runs `mqlog start ...` expecting it to fail; returns its exit code and output. */
export function runBrokerExpectingExit(args: string[], timeoutMs = 15_000): Promise<{ code: number | null; output: string }> {
  const child = spawn(process.execPath, ['--import=tsx', MAIN, 'start', '--log-level', 'fatal', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout?.on('data', (c: Buffer) => (output += c.toString()));
  child.stderr?.on('data', (c: Buffer) => (output += c.toString()));
  return new Promise((resolve) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, output });
    });
  });
}
