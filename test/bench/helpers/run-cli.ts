/** Runs `mqlog bench ...` in a child process without blocking the test (whose broker must keep serving). */
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const MAIN = fileURLToPath(new URL('../../../src/cli/main.ts', import.meta.url));

export interface CliRun {
  status: number | null;
  stdout: string;
  stderr: string;
}

/**
 * `shell`, when given, is run by `sh -c` before exec'ing node (e.g. `ulimit -n 64`), so the
 * limit applies to the tool alone.
 */
export function mqlogBench(args: string[], shell?: string, timeoutMs = 40_000): Promise<CliRun> {
  return new Promise((resolve) => {
    const child =
      shell === undefined
        ? spawn(process.execPath, ['--import=tsx', MAIN, 'bench', ...args])
        : spawn('sh', ['-c', `${shell}; exec "$0" --import=tsx "$@"`, process.execPath, MAIN, 'bench', ...args]);
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('close', (status) => {
      clearTimeout(timer);
      resolve({ status, stdout, stderr });
    });
  });
}
