import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { InputError, issuesOf, parseInput } from '../../src/errors.ts';
import { describeIssue, FIELD_LABELS, fieldLabel, problem, PROBLEMS, problemText } from '../../src/problems.ts';
import { newClientSchema } from '../../src/windows/clients.ts';
import { newWindowSchema } from '../../src/windows/windows.ts';
import { newEnterpriseSchema } from '../../src/enterprises/enterprises.ts';
import { newAccountSchema } from '../../src/accounts/accounts.ts';

// The message catalogue: every problem in both languages, with the same parameters.

const HAN = /\p{Script=Han}/u;
const names = (text: string) => [...text.matchAll(/\{(\w+)\}/g)].map((m) => m[1]).sort();

describe('the message catalogue', () => {
  it('has a Chinese zh-CN text with the same parameters as the English one for every code', () => {
    for (const [code, texts] of Object.entries(PROBLEMS)) {
      expect(texts['zh-CN'], code).toMatch(HAN);
      expect(texts.en, code).not.toMatch(HAN);
      expect(names(texts['zh-CN']), code).toEqual(names(texts.en));
    }
  });

  it('labels every field in Chinese, positions in a list included', () => {
    for (const [field, labels] of Object.entries(FIELD_LABELS)) {
      expect(labels['zh-CN'], field).toMatch(HAN);
      expect(labels.en, field).not.toMatch(HAN);
    }
    expect(fieldLabel('redirectUris.0', 'zh-CN')).toBe('回调地址（第 1 个）');
    expect(fieldLabel('redirectUris.0', 'en')).toBe('redirect URIs (no. 1)');
    // Not a label: a member nobody's form has is named as it was sent.
    for (const field of ['constructor', '__proto__', 'toString', 'x.0']) expect(fieldLabel(field, 'zh-CN')).toBe(field);
  });

  it('renders nested problems (a USCC’s reasons) in the same language', () => {
    const p = problem('uscc_invalid', { uscc: 'X', reasons: [problem('uscc_org_check', { expected: '1' }), problem('uscc_check', { expected: 'D' })] });
    expect(problemText(p, 'en')).toBe('"X" is not a valid Unified Social Credit Code: the organisation code check (character 17) should be 1; the check character (character 18) should be D');
    expect(problemText(p, 'zh-CN')).toBe('“X” 不是有效的统一社会信用代码：组织机构代码校验码（第 17 位）应为 1；校验码（第 18 位）应为 D');
  });

  it('keeps the English message of an error as "field: text" and gives it a code', () => {
    const err = new InputError('password', 'password_reused', { count: 5 });
    expect(err.message).toBe('password: must not be one of your last 5 passwords');
    expect(err.issues).toEqual([{ field: 'password', code: 'password_reused', params: { count: 5 }, message: 'must not be one of your last 5 passwords' }]);
    expect(describeIssue(err, 'zh-CN')).toBe('密码：不能与最近 5 次用过的密码相同。');
  });
});

describe('parseInput', () => {
  const refused = (schema: z.ZodType, input: unknown) => {
    try {
      parseInput(schema, input);
    } catch (err) {
      return (err as InputError).issues;
    }
    throw new Error('accepted');
  };

  it('turns every zod issue into a catalogue code, zod’s own texts included', () => {
    const inputs: Array<[z.ZodType, unknown]> = [
      [newWindowSchema, { kind: 'moon', name: 'x', region: 'abc', extra: 1, cluster: 5 }],
      [newWindowSchema, {}],
      [newWindowSchema, 'not an object'],
      [newClientSchema, { windowId: -1, name: '', redirectUris: ['http://a.example', 7], grantTypes: ['implicit'], scopes: [], thirdParty: 'yes' }],
      [newEnterpriseSchema, { uscc: '91410000170001402D', name: 'a', type: 'company', region: '41' }],
      [newAccountSchema, { username: '1', displayName: '', phone: '123', email: 'x', password: 1 }],
    ];
    for (const [schema, input] of inputs) {
      const issues = refused(schema, input);
      expect(issues.length).toBeGreaterThan(0);
      for (const issue of issues) {
        expect(Object.hasOwn(PROBLEMS, issue.code), `${issue.field}: ${issue.code}`).toBe(true);
        expect(describeIssue(issue, 'zh-CN')).toMatch(HAN);
      }
    }
  });

  it('takes the parameters from the issue: bounds, the enum’s values, a check’s own', () => {
    const issues = issuesOf(
      z.strictObject({ name: z.string().min(2), kind: z.enum(['a', 'b']), list: z.array(z.string()).max(1), n: z.number().max(3) }).safeParse({ name: 'x', kind: 'c', list: ['1', '2'], n: 4, more: 1 }).error!,
    );
    expect(issues.map(({ field, code, params, message }) => ({ field, code, params, message }))).toEqual([
      { field: 'name', code: 'too_short', params: { minimum: 2 }, message: 'must be at least 2 characters' },
      { field: 'kind', code: 'one_of', params: { values: 'a, b' }, message: 'must be one of a, b' },
      { field: 'list', code: 'too_many', params: { maximum: 1 }, message: 'must hold at most 1 items' },
      { field: 'n', code: 'too_big', params: { maximum: 3 }, message: 'must be at most 3' },
      { field: 'more', code: 'unknown_field', params: {}, message: 'is not a known field' },
    ]);
    expect(refused(z.strictObject({ a: z.string(), b: z.string(), n: z.number().int(), p: z.number().positive() }), { b: 5, n: 1.5, p: 0 })).toEqual([
      { field: 'a', code: 'required', params: {}, message: 'is required' },
      { field: 'b', code: 'wrong_type', params: {}, message: 'has the wrong type' },
      { field: 'n', code: 'whole_number', params: {}, message: 'must be a whole number' },
      { field: 'p', code: 'not_above', params: { minimum: 0 }, message: 'must be more than 0' },
    ]);
    expect(refused(newClientSchema, { windowId: 1, name: 'c', redirectUris: ['http://a.example/cb'] })[0]).toMatchObject({
      field: 'redirectUris.0',
      code: 'uri_not_https',
      params: { uri: 'http://a.example/cb' },
      message: '"http://a.example/cb" must use https (http is allowed only for localhost and loopback addresses)',
    });
  });
});
