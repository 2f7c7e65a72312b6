import { expect } from 'vitest';
import { runCliOn } from '../../src/cli.ts';
import type { Db } from '../../src/db/connect.ts';
import type { CliResult } from './processes.ts';

// `sme-passport ARGV` run in this process on the test's database, as the server runs a
// command relayed to it: the parsing, checks, output and exit codes of the process,
// without its second of start-up. Its settings come from `env` alone, as a process's
// from its environment (NODE_ENV=test, as processes.ts gives one), so no test's settings
// reach another's. `dir` is its data folder (a development master key is made there)
// and its working directory. What only a process shows (the database it opens itself,
// a real pipe, a bad environment) is tested with processes.ts `runCli`.
export function runCliInProcess(db: Db, argv: string[], options: { dir: string; env?: Record<string, string>; stdin?: string }): Promise<CliResult> {
  return runCliOn(db, argv, { stdin: options.stdin ?? '', cwd: options.dir, env: { NODE_ENV: 'test', DATA_DIR: options.dir, ...options.env } });
}

// A refused command: its exit code, nothing on standard output, one line on standard
// error saying why.
export function expectRefused(r: CliResult, pattern: RegExp, code = 1): void {
  expect({ code: r.code, stdout: r.stdout }).toEqual({ code, stdout: '' });
  expect(r.stderr.trim().split('\n')).toHaveLength(1);
  expect(r.stderr).toMatch(pattern);
}
