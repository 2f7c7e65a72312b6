import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { importEnterprises, type Rejection } from '../src/enterprises/import.ts';
import { completeUscc } from '../src/enterprises/uscc.ts';
import { testDatabase, type TestDatabase } from './helpers/database.ts';

let database: TestDatabase;

beforeAll(async () => {
  database = await testDatabase();
});

afterAll(async () => {
  await database?.close();
});

const csv = `uscc,name,type,region,industry
91410000170001401D,宇通客车股份有限公司,enterprise,410100,汽车制造
91440300192317458F,比亚迪股份有限公司,enterprise,440300,
91410000170001401E,坏代码公司,enterprise,410100,
914403001922038216,华为技术有限公司,enterprise,440300,通信
91410000170001401d,宇通重复,enterprise,410100,
,郑州大学创业团队,team,410100,
,郑州大学创业团队,team,410100,
,没有代码的公司,enterprise,410100,
${completeUscc('9141010000000777')},"名称,含逗号",individual_business,410100,餐饮
${completeUscc('9141010000000778')},字段太多,enterprise,410100,x,y
${completeUscc('9141010000000779')},错误类型,company,410100,
91440300192317458F,"未闭合,enterprise,440300
`;

async function run(text: string, options: { dryRun?: boolean; batchSize?: number } = {}) {
  const rejected: Rejection[] = [];
  const summary = await importEnterprises(database.db, Readable.from([text]), { ...options, onRejected: (r) => rejected.push(r) });
  return { summary, rejected };
}

const count = async () => Number((await database.db('enterprises').count({ n: '*' }).first())?.n);

describe('importing enterprises from CSV', () => {
  it('checks everything on a dry run and writes nothing', async () => {
    const { summary, rejected } = await run(csv, { dryRun: true, batchSize: 2 });
    expect(summary).toEqual({ read: 12, inserted: 5, existing: 0, rejected: 7 });
    expect(rejected).toHaveLength(7);
    expect(await count()).toBe(0);
  });

  it('loads the valid rows and reports every other row with its line, value and reason', async () => {
    const { summary, rejected } = await run(csv, { batchSize: 2 });
    expect(summary).toEqual({ read: 12, inserted: 5, existing: 0, rejected: 7 });
    expect(await count()).toBe(5);
    const byLine = Object.fromEntries(rejected.map((r) => [r.line, r]));
    expect(byLine[4]).toMatchObject({ value: '91410000170001401E', reason: expect.stringMatching(/check character \(character 18\) should be D/) });
    expect(byLine[6]).toMatchObject({ value: '91410000170001401D', reason: expect.stringMatching(/^duplicate/) });
    expect(byLine[8]).toMatchObject({ value: '郑州大学创业团队', reason: expect.stringMatching(/^duplicate/) });
    expect(byLine[9]).toMatchObject({ reason: expect.stringMatching(/uscc: is required/) });
    expect(byLine[11]).toMatchObject({ reason: 'expected 5 fields, found 6' });
    expect(byLine[12]).toMatchObject({ value: 'company', reason: expect.stringMatching(/^type: must be one of/) });
    expect(byLine[13]).toMatchObject({ reason: expect.stringMatching(/^malformed CSV/) });
    const comma = await database.db('enterprises').where({ uscc: completeUscc('9141010000000777') }).first();
    expect(comma).toMatchObject({ name: '名称,含逗号', type: 'individual_business', industry: '餐饮', status: 'pending' });
  });

  it('changes nothing when the same file is loaded again', async () => {
    const { summary } = await run(csv, { batchSize: 3 });
    // Repeated lines now find their row registered: existing, not duplicates.
    expect(summary).toMatchObject({ read: 12, inserted: 0 });
    expect(summary.existing + summary.rejected).toBe(12);
    expect(summary.existing).toBeGreaterThanOrEqual(5);
    expect(await count()).toBe(5);
  });

  it('refuses a file whose header is wrong, before writing anything', async () => {
    await expect(run('uscc,name,kind,region\nx,y,z,410100\n')).rejects.toThrow(/unknown column "kind"/);
    await expect(run('uscc,name,type\n')).rejects.toThrow(/no "region" column/);
    await expect(run('')).rejects.toThrow(/is empty/);
    expect(await count()).toBe(5);
  });
});
