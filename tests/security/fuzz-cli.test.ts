import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Command } from 'commander';
import { stringify } from 'csv-stringify/sync';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildCli } from '../../src/cli.ts';
import { completeUscc } from '../../src/enterprises/uscc.ts';
import { createWindow } from '../../src/windows/windows.ts';
import { createApi } from '../../src/windows/apis.ts';
import { runCliInProcess } from '../helpers/cli-in-process.ts';
import { fuzzOptions, fuzzRuns, hostileText, tally } from '../helpers/fuzz.ts';
import { changedTables, snapshot } from '../helpers/rows.ts';
import { testDatabase, type TestDatabase } from '../helpers/database.ts';

// Every flag and argument of every command, read from the command line's own
// definition (a new command or flag is fuzzed without anyone listing it here), and
// every column of the CSV import. The commands run in-process on the test's database,
// the same code the server runs for a relayed command. Properties: never exit 3 (an
// unexpected failure), never SQL on standard error, and a refusal writes nothing.

const RUNS = fuzzRuns(15);
const record = tally('command line');
// The rate-limit counters are not the command line's; the import puts even a file of
// rejected rows on record.
const UNTOUCHED = ['rate_limits'];

let database: TestDatabase;
let dir: string;
let windowId: string;
let apiId: string;
const USCC = completeUscc('9141010000088801');

// Flags that name a file to write (as root, a hostile path could land anywhere) are not
// fuzzed: --report, --output, --export, and the import's file (its report is written
// beside it). The import's content is fuzzed column by column below.
const WRITES_FILES = new Set(['--report', '--output', '--export', '<file>']);

// A valid use of each command; the fuzzer replaces one value at a time. A command added
// without one here fails the first test below.
const BASE: Record<string, () => string[]> = {
  migrate: () => [],
  'window create': () => ['--kind', 'service', '--name', '模糊窗口', '--region', '410100'],
  'window list': () => [],
  'client create': () => ['--window', windowId, '--name', 'rp', '--redirect-uri', 'https://rp.example.cn/cb', '--post-logout-redirect-uri', 'https://rp.example.cn/out', '--backchannel-logout-uri', 'https://rp.example.cn/bc', '--frontchannel-logout-uri', 'https://rp.example.cn/fc', '--grant-types', 'authorization_code'],
  'client list': () => ['--window', windowId],
  'api create': () => ['--window', windowId, '--identifier', 'https://fuzz.example.cn/api', '--name', '模糊接口', '--scope', 'fuzz:read', '--token-ttl', '600'],
  'api list': () => ['--window', windowId],
  'api update': () => ['--id', apiId, '--name', '模糊接口', '--scope', 'fuzz:write', '--token-ttl', '900'],
  'api delete': () => ['--id', '999999'],
  'account disable': () => ['nobody.here'],
  'account enable': () => ['nobody.here'],
  'account create': () => ['--username', 'fuzz.user', '--name', '名字', '--phone', '13912345678', '--email', 'fuzz@example.cn', '--password-stdin'],
  'enterprise create': () => ['--type', 'enterprise', '--uscc', USCC, '--region', '410100', '--name', '模糊公司', '--industry', '制造'],
  'enterprise add-member': () => ['--enterprise', USCC, '--account', 'nobody.here', '--role', 'operator'],
  'enterprise set-status': () => ['--enterprise', USCC, '--status', 'pending'],
  'enterprise find': () => ['公司', '--limit', '5'],
  'enterprise import': () => ['registry.csv'],
  'admin grant': () => ['--account', 'nobody.here', '--role', 'window_admin', '--window', windowId],
  'admin revoke': () => ['--account', 'nobody.here', '--role', 'window_admin', '--window', windowId],
  'admin bootstrap': () =>
    ['system', 'security', 'audit'].flatMap((duty, i) => [`--${duty}-admin`, `fuzz.${duty}`, `--${duty}-admin-name`, '管理员', `--${duty}-admin-phone`, `1370000000${i}`, `--${duty}-admin-email`, `${duty}@example.cn`]),
  'keys list': () => [],
  'keys rotate': () => ['--delay', '86400'],
  'keys retire': () => ['--kid', 'no-such-key'],
  stats: () => ['--window', windowId, '--year', '2026'],
  'logout-deliveries': () => ['--window', windowId, '--days', '7'],
  purge: () => [],
  'audit verify': () => [],
  'audit export': () => ['--from', '2026-01-01', '--to', '2026-02-01', '--format', 'jsonl', '--actor', 'cli:root', '--window', windowId, '--event', 'sign_in', '--outcome', 'success'],
  'audit purge': () => ['--before', '2000-01-01'],
};

type Leaf = { name: string; command: Command };
const leaves = (command: Command, names: string[] = []): Leaf[] =>
  command.commands.length ? command.commands.flatMap((c) => leaves(c, [...names, c.name()])) : [{ name: names.join(' '), command }];
const commands = leaves(buildCli());

// The argv of a command with one value replaced: a flag's, or a positional argument's.
function argvWith(leaf: Leaf, slot: string, value: string): string[] {
  const argv = BASE[leaf.name]!();
  if (slot.startsWith('--')) {
    const at = argv.indexOf(slot);
    return at >= 0 ? argv.map((v, i) => (i === at + 1 ? value : v)) : [...argv, slot, value];
  }
  const position = leaf.command.registeredArguments.findIndex((a) => `<${a.name()}>` === slot);
  const flagsAndValues = new Set(argv.flatMap((v, i) => (v.startsWith('--') ? [i, i + 1] : [])));
  let seen = -1;
  return argv.map((v, i) => (!flagsAndValues.has(i) && ++seen === position ? value : v));
}
const commandLine = (leaf: Leaf, argv: string[]) => [...leaf.name.split(' '), ...argv];

const targets = commands.flatMap((leaf) =>
  [...leaf.command.options.filter((o) => o.required || o.optional).map((o) => o.long!), ...leaf.command.registeredArguments.map((a) => `<${a.name()}>`)]
    .filter((slot) => !WRITES_FILES.has(slot))
    .map((slot) => ({ leaf, slot })),
);

// The password of account create, on standard input.
const cli = (argv: string[]) => runCliInProcess(database.db, argv, { dir, stdin: 'Kaifeng-Iron-Pagoda-1049\n' });

// The property for one run of a command: refused or done, never an unexpected
// failure, never a statement on standard error, and a refusal writes nothing.
async function check(target: string, argv: string[], rows: { current: Awaited<ReturnType<typeof snapshot>> }) {
  const before = rows.current;
  const r = await cli(argv);
  record(target, r.code === 3 ? 500 : r.code === 0 ? 200 : 400);
  expect(r.code, `exit ${r.code}: ${r.stderr.slice(0, 300)}`).not.toBe(3);
  expect(r.stderr).not.toMatch(/\b(insert into|select .* from|update .* set|delete from)\b/i);
  rows.current = await snapshot(database.db, UNTOUCHED);
  if (r.code !== 0) expect(changedTables(before, rows.current)).toEqual([]);
}

beforeAll(async () => {
  database = await testDatabase();
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sme-passport-cli-fuzz-'));
  windowId = String((await createWindow(database.db, { kind: 'service', name: '模糊测试机构' })).id);
  apiId = String((await createApi(database.db, { windowId: Number(windowId), identifier: 'https://fuzzed.example.cn/api', name: '模糊', scopes: ['fuzz:read'] })).id);
  fs.writeFileSync(path.join(dir, 'registry.csv'), `uscc,name,type,region,industry\n${completeUscc('9141010000088802')},模糊导入公司,enterprise,410100,制造\n`);
});

afterAll(async () => {
  await database?.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

describe('fuzzing the command line', () => {
  it('has a valid use of every command, which the command line takes (no usage error)', async () => {
    expect(commands.map((c) => c.name).filter((name) => !BASE[name])).toEqual([]);
    for (const leaf of commands) {
      const r = await cli(commandLine(leaf, BASE[leaf.name]!()));
      expect({ command: leaf.name, code: r.code === 2 ? r.stderr : 'not a usage error' }).toEqual({ command: leaf.name, code: 'not a usage error' });
    }
  });

  it.each(targets.map((t) => [`${t.leaf.name} ${t.slot}`, t] as const))('never fails unexpectedly, and a refusal writes nothing: %s', async (name, { leaf, slot }) => {
    const rows = { current: await snapshot(database.db, UNTOUCHED) };
    await fc.assert(
      fc.asyncProperty(hostileText(), (value) => check(name, commandLine(leaf, argvWith(leaf, slot, value)), rows)),
      fuzzOptions(name, RUNS),
    );
  });

  const COLUMNS = ['uscc', 'name', 'type', 'region', 'industry'];
  it.each([...COLUMNS, '*header*'])('never fails unexpectedly on a hostile CSV value, and a rejected row writes nothing: %s', async (column) => {
    const rows = { current: await snapshot(database.db, UNTOUCHED) };
    let serial = 0;
    await fc.assert(
      fc.asyncProperty(hostileText(), async (value) => {
        const valid: Record<string, string> = { uscc: completeUscc(`91410100${String(++serial).padStart(8, '0')}`), name: `导入公司${serial}`, type: 'enterprise', region: '410100', industry: '制造' };
        const header = column === '*header*' ? [...COLUMNS.slice(0, 4), value] : COLUMNS;
        const file = path.join(dir, `column-${serial}.csv`);
        fs.writeFileSync(file, stringify([header, COLUMNS.map((c) => (c === column ? value : valid[c]!))]));
        const before = rows.current;
        const r = await cli(['enterprise', 'import', path.basename(file), '--json']);
        record(`CSV ${column}`, r.code === 3 ? 500 : r.code === 0 ? 200 : 400);
        expect(r.code, r.stderr.slice(0, 300)).not.toBe(3);
        rows.current = await snapshot(database.db, UNTOUCHED);
        const summary = r.code === 0 ? (JSON.parse(r.stdout) as { inserted: number }) : undefined;
        // Nothing but the import's own record when nothing was imported.
        if (!summary?.inserted) expect(changedTables(before, rows.current).filter((t) => t !== 'audit_events')).toEqual([]);
      }),
      fuzzOptions(`CSV ${column}`, RUNS * 2),
    );
  });
});
