import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAccount } from '../src/accounts/accounts.ts';
import { PASSWORD_POLICIES } from '../src/accounts/password-policy.ts';
import { createEnterprise, findEnterprise, searchEnterprises } from '../src/enterprises/enterprises.ts';
import { addMember, membershipsOf, removeMember } from '../src/enterprises/memberships.ts';
import { completeUscc } from '../src/enterprises/uscc.ts';
import { testDatabase, type TestDatabase } from './helpers/database.ts';

let database: TestDatabase;

beforeAll(async () => {
  database = await testDatabase();
});

afterAll(async () => {
  await database?.close();
});

describe('the enterprise registry', () => {
  it('registers service objects with a valid, unique USCC (teams may have none)', async () => {
    const yutong = await createEnterprise(database.db, { uscc: ' 91410000170001401d ', name: '宇通客车股份有限公司', type: 'enterprise', region: '410100' });
    expect(yutong).toMatchObject({ uscc: '91410000170001401D', status: 'pending' });
    await expect(createEnterprise(database.db, { uscc: '91410000170001401D', name: '另一家', type: 'enterprise', region: '410100' })).rejects.toThrow(/already registered/);
    await expect(createEnterprise(database.db, { uscc: '91410000170001401E', name: '坏代码', type: 'enterprise', region: '410100' })).rejects.toThrow(/check character \(character 18\) should be D/);
    await expect(createEnterprise(database.db, { name: '无代码公司', type: 'enterprise', region: '410100' })).rejects.toThrow(/uscc: is required/);
    await expect(createEnterprise(database.db, { uscc: completeUscc('9141010000000001'), name: 'x', type: 'enterprise', region: '410100' })).rejects.toThrow(/name: must be at least 2/);
    const team = await createEnterprise(database.db, { name: '郑州大学创业团队', type: 'team', region: '410100' });
    expect(team.uscc).toBeNull();
    expect(await findEnterprise(database.db, '91410000170001401d')).toEqual(yutong);
    expect(await findEnterprise(database.db, yutong.id)).toEqual(yutong);
    expect(Number((await database.db('enterprises').count({ n: '*' }).first())?.n)).toBe(2);
  });

  it('finds by USCC, by name prefix and by a part of the name', async () => {
    await createEnterprise(database.db, { uscc: completeUscc('9141030000000002'), name: '洛阳客车配件有限公司', type: 'enterprise', region: '410300' });
    await createEnterprise(database.db, { uscc: completeUscc('9241010000000003'), name: '宇通路小吃店', type: 'individual_business', region: '410100' });
    expect((await searchEnterprises(database.db, '91410000170001401D')).map((e) => e.name)).toEqual(['宇通客车股份有限公司']);
    expect((await searchEnterprises(database.db, '宇通')).map((e) => e.name)).toEqual(['宇通客车股份有限公司', '宇通路小吃店']);
    expect((await searchEnterprises(database.db, '客车')).map((e) => e.name)).toEqual(['宇通客车股份有限公司', '洛阳客车配件有限公司']);
    expect(await searchEnterprises(database.db, '%')).toEqual([]);
    expect(await searchEnterprises(database.db, '   ')).toEqual([]);
  });

  it('keeps memberships with a role', async () => {
    const person = await createAccount(database.db, { username: 'chen.jing', displayName: '陈静', password: 'Luoyang-Peony-2014' }, PASSWORD_POLICIES.mlps);
    const yutong = (await findEnterprise(database.db, '91410000170001401D'))!;
    await addMember(database.db, { enterpriseId: yutong.id, accountId: person.id, role: 'legal_rep' });
    await expect(addMember(database.db, { enterpriseId: yutong.id, accountId: person.id, role: 'operator' })).rejects.toThrow(/already a member/);
    await expect(addMember(database.db, { enterpriseId: yutong.id, accountId: person.id, role: 'owner' as never })).rejects.toThrow(/role: must be one of legal_rep, admin, operator/);
    expect(await membershipsOf(database.db, person.id)).toEqual([{ enterprise: yutong, role: 'legal_rep' }]);
    expect(await removeMember(database.db, yutong.id, person.id)).toBe(true);
    expect(await membershipsOf(database.db, person.id)).toEqual([]);
  });
});
