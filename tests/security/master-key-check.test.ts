import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { onPostgres, testDatabase, withCliDatabase, type TestDatabase } from '../helpers/database.ts';
import { logContractBreaches } from '../helpers/log-lines.ts';
import { runCli, spawnNode, startNode } from '../helpers/processes.ts';

// A database's secrets open under one master key (src/crypto/key-check.ts). A node or a
// command given another is refused in one line naming the cause, exit 2, and writes
// nothing; a database from before the check is judged by one of its sealed keys. The
// server as a process, on either database (the embedded one read between starts).

const MISMATCH = 'MASTER_KEY does not open this database: its secrets were sealed with another master key. Start with the master key kept for this database (README, "Backup and restore").';

let database: TestDatabase | undefined;
let dataDir: string;
const rightKey = crypto.randomBytes(32).toString('base64');
const wrongKey = crypto.randomBytes(32).toString('base64');

beforeAll(async () => {
  dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'sme-passport-key-check-'));
  // The embedded database is the node's own, made in its data folder.
  if (onPostgres()) database = await testDatabase();
});

afterAll(async () => {
  await database?.close();
  fs.rmSync(dataDir, { recursive: true, force: true });
});

const env = (masterKey: string) => ({ ...(database && { DATABASE_URL: database.url! }), DATA_DIR: dataDir, MASTER_KEY: masterKey });
const onDatabase = <T>(work: (db: TestDatabase['db']) => Promise<T>) => withCliDatabase(dataDir, database, work);
// What a refused start or command must leave as it was.
const sealedState = () =>
  onDatabase(async (db) => ({
    keys: await db('keys').orderBy('kid').select('kid', 'private_sealed', 'retired_at'),
    check: await db('master_key_check').select('value'),
  }));

async function startWith(masterKey: string) {
  const node = await startNode(env(masterKey));
  await node.stop();
}

// masterKey undefined: none given, so the development key in the data folder (made now).
async function refusedStart(masterKey: string | undefined, message = MISMATCH) {
  const { MASTER_KEY: _given, ...rest } = env('');
  const node = spawnNode(masterKey ? env(masterKey) : rest);
  await expect(node.started).rejects.toThrow(/node exited with 2/);
  const output = node.output();
  const lines = output.trim().split('\n').map((l) => JSON.parse(l) as { level: number; msg: string; err?: unknown });
  expect(lines.at(-1)).toMatchObject({ msg: `sme-passport: ${message}` });
  expect(lines.at(-1)!.err).toBeUndefined();
  expect(output).not.toContain(' at ');
  for (const key of [rightKey, wrongKey]) expect(output).not.toContain(key);
  expect(logContractBreaches(output)).toEqual([]);
}

describe('a master key that does not open the database', () => {
  it('refuses a node started with another key (or the development key file), in one line with exit 2, writing nothing; the right key starts', async () => {
    await startWith(rightKey);
    const before = await sealedState();
    expect(before.keys.length).toBeGreaterThanOrEqual(3);
    expect(before.check).toHaveLength(1);

    await refusedStart(wrongKey);
    expect(await sealedState()).toEqual(before);
    await refusedStart(undefined, MISMATCH.replace('MASTER_KEY', `the master key in ${path.join(dataDir, 'master.key')} (MASTER_KEY is unset)`));
    expect(await sealedState()).toEqual(before);

    await startWith(rightKey);
    expect(await sealedState()).toEqual(before);
  });

  it('refuses the commands that use the master key the same way (exit 2), changing nothing', async () => {
    const before = await sealedState();
    for (const argv of [['keys', 'rotate', '--delay', '0'], ['account', 'disable', 'nobody.here']]) {
      const r = await runCli(argv, env(wrongKey));
      expect({ argv, code: r.code, stdout: r.stdout, stderr: r.stderr }).toEqual({ argv, code: 2, stdout: '', stderr: `error: ${MISMATCH}\n` });
    }
    expect(await sealedState()).toEqual(before);
    const listed = await runCli(['keys', 'list', '--json'], env(wrongKey));
    expect(listed.code).toBe(0);
  });

  it('judges a database from before the check by its sealed keys: another key refused, the right one writes the check', async () => {
    const before = await sealedState();
    await onDatabase((db) => db('master_key_check').delete());

    await refusedStart(wrongKey);
    expect(await sealedState()).toEqual({ ...before, check: [] });
    const r = await runCli(['keys', 'rotate', '--delay', '0'], env(wrongKey));
    expect({ code: r.code, stderr: r.stderr }).toEqual({ code: 2, stderr: `error: ${MISMATCH}\n` });
    expect(await sealedState()).toEqual({ ...before, check: [] });

    await startWith(rightKey);
    expect(await sealedState()).toEqual(before);
  });
});
