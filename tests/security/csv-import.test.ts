import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { completeUscc } from '../../src/enterprises/uscc.ts';
import { runCliInProcess } from '../helpers/cli-in-process.ts';
import { testDatabase, type TestDatabase } from '../helpers/database.ts';

// `sme-passport enterprise import` on files that go wrong part-way: a bad line is a
// rejected line like any other, and an unexpected failure keeps what was committed,
// puts it on record and says how far it got, never printing SQL or values.

let database: TestDatabase;
let dir: string;

beforeAll(async () => {
  database = await testDatabase();
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sme-passport-import-'));
});

afterAll(async () => {
  await database?.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

const cli = (argv: string[]) => runCliInProcess(database.db, argv, { dir });

// A file of `rows` enterprises (line 1 is the header, row i is on line i + 1), with
// `odd` as the name on one line.
function registry(file: string, serial: number, rows: number, odd: { line: number; name: string }): string {
  const lines = ['uscc,name,type,region,industry'];
  for (let i = 1; i <= rows; i++) {
    const line = i + 1;
    lines.push(`${completeUscc(`91410100${String(serial + i).padStart(8, '0')}`)},${line === odd.line ? odd.name : `郑州第${serial + i}号公司`},enterprise,410100,制造`);
  }
  fs.writeFileSync(path.join(dir, file), `${lines.join('\n')}\n`);
  return file;
}

const enterprises = async () => Number((await database.db('enterprises').count({ n: '*' }))[0]!.n);
const importRecords = (file: string) => database.db('audit_events').where({ event: 'enterprise.imported', target: `file:${file}` }).orderBy('id').select('outcome', 'reason', 'after');

describe('importing a file that goes wrong part-way', () => {
  it('takes a NUL byte on line 1502 of a 1,601-row file as one rejected line: every other row is imported, the report names the line, and the audit record has the counts', async () => {
    const file = registry('nul.csv', 0, 1601, { line: 1502, name: '空字符\u0000公司' });
    const r = await cli(['enterprise', 'import', file, '--json']);
    expect({ code: r.code, stderr: r.stderr }).toEqual({ code: 0, stderr: '' });
    expect(JSON.parse(r.stdout)).toMatchObject({ read: 1601, inserted: 1600, existing: 0, rejected: 1 });
    expect(await enterprises()).toBe(1600);
    const [head, ...rejected] = fs.readFileSync(path.join(dir, `${file}.rejected.csv`), 'utf8').trim().split('\n');
    expect(head).toBe('line,value,reason');
    expect(rejected).toEqual([expect.stringMatching(/^1502,.*name: must not contain control characters/)]);
    expect(await importRecords(file)).toEqual([{ outcome: 'success', reason: null, after: { read: 1601, inserted: 1600, existing: 0, rejected: 1 } }]);
  });

  it('on an unexpected database failure, rolls back the batch in flight, keeps and records the committed batches, and says how far it got without SQL or values', async () => {
    // A fault the database itself raises, on one row in the middle of the second batch.
    await database.db.raw(`CREATE FUNCTION refuse_injected_fault() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN IF NEW.name = '故障注入公司' THEN RAISE EXCEPTION 'injected fault for %', NEW.uscc; END IF; RETURN NEW; END $$`);
    await database.db.raw('CREATE TRIGGER refuse_injected_fault BEFORE INSERT ON enterprises FOR EACH ROW EXECUTE FUNCTION refuse_injected_fault()');
    const file = registry('fault.csv', 10_000, 1601, { line: 1502, name: '故障注入公司' });
    const before = await enterprises();

    const r = await cli(['enterprise', 'import', file]);
    expect(r.code).toBe(3);
    expect(r.stdout).toBe('');
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(/stopped at line 1002/);
    expect(r.stderr).toMatch(/1000 rows were imported/);
    expect(r.stderr).not.toMatch(/insert|\$1|enterprises"|故障注入公司|injected fault|9141010/i);
    expect(await enterprises()).toBe(before + 1000);
    expect(await importRecords(file)).toEqual([
      { outcome: 'failure', reason: expect.stringMatching(/stopped at line 1002/), after: { read: expect.any(Number), inserted: 1000, existing: 0, rejected: 0, stoppedAtLine: 1002 } },
    ]);

    // Once the cause is gone, the same file finishes the job.
    await database.db.raw('DROP TRIGGER refuse_injected_fault ON enterprises');
    const again = await cli(['enterprise', 'import', file, '--json']);
    expect(again.code).toBe(0);
    expect(JSON.parse(again.stdout)).toMatchObject({ read: 1601, inserted: 601, existing: 1000, rejected: 0 });
    expect(await enterprises()).toBe(before + 1601);
  });
});
