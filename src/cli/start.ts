/**
 * `mqlog start`: parses the broker's flags and runs it until SIGINT/SIGTERM.
 * Until the broker core lands this says so plainly and exits non-zero.
 */
import { stderr } from 'node:process';

export async function runStart(_args: string[]): Promise<number> {
  stderr.write('mqlog: the broker is not built yet (see issue "Broker core"); only the commit log exists so far.\n');
  return 1;
}
