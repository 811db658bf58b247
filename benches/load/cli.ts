/**
 * `mqlog bench`: entry point of the load/profiling client (issue "Load and profiling client").
 * Placeholder until that issue lands: says so and exits non-zero.
 */
import { stderr } from 'node:process';

export async function runBenchCli(_args: string[]): Promise<number> {
  stderr.write('mqlog bench: the load client is not built yet.\n');
  return 1;
}
