#!/usr/bin/env node
/**
 * The `mqlog` command line: dispatches a sub-command (`start`, `bench`, ...).
 * This is the only place that reads `process.argv`; it turns flags into option objects and
 * hands them to the part of the program that owns them.
 */
import { argv, exit, stderr } from 'node:process';

const USAGE = `usage: mqlog <command> [options]

commands:
  start    run the broker (see: mqlog start --help)
  bench    run the load/profiling client against any MQTT broker (see: mqlog bench --help)
`;

async function main(args: string[]): Promise<number> {
  const [command, ...rest] = args;
  switch (command) {
    case 'start': {
      const { runStart } = await import('./start.js');
      return runStart(rest);
    }
    case 'bench': {
      const { runBenchCli } = await import('../../benches/load/cli.js');
      return runBenchCli(rest);
    }
    case undefined:
    case '-h':
    case '--help':
      stderr.write(USAGE);
      return command === undefined ? 2 : 0;
    default:
      stderr.write(`mqlog: unknown command '${command}'\n${USAGE}`);
      return 2;
  }
}

main(argv.slice(2)).then(
  (code) => {
    if (code !== 0) exit(code);
  },
  (err: unknown) => {
    stderr.write(`mqlog: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    exit(1);
  },
);
