import { describe, expect, it } from 'vitest';
import { PASSWORD_POLICIES, passwordExpired, passwordProblem as problem } from '../../src/accounts/password-policy.ts';
import { englishText } from '../../src/problems.ts';

// The policy names a problem by its code; its English text is what the CLI prints.
const passwordProblem = (...args: Parameters<typeof problem>) => {
  const found = problem(...args);
  return found && englishText(found);
};

const { mlps, asvs } = PASSWORD_POLICIES;

describe('password policy profiles', () => {
  it('mlps asks for three character classes; asvs asks for none', () => {
    expect(passwordProblem(mlps, 'correct horse battery staple', [])).toMatch(/at least 3 of/);
    expect(passwordProblem(asvs, 'correct horse battery staple', [])).toBeUndefined();
    expect(passwordProblem(mlps, 'Correct horse battery 9', [])).toBeUndefined();
    expect(passwordProblem(mlps, '黄河Yellow2014', [])).toBeUndefined();
  });

  it('both refuse short, over-long, common and personal passwords', () => {
    for (const policy of [mlps, asvs]) {
      expect(passwordProblem(policy, 'Ab1-x', [])).toBe('must be at least 8 characters');
      expect(passwordProblem(policy, `Aa1-${'x'.repeat(130)}`, [])).toBe('must be at most 128 characters');
      expect(passwordProblem(policy, 'P@ssw0rd', [])).toMatch(/most common/);
      expect(passwordProblem(policy, 'zhang.wei-Longpass1', ['zhang.wei'])).toMatch(/username, phone number or email/);
      expect(passwordProblem(policy, 'My-13912345678-pw', ['someone', '13912345678'])).toMatch(/username, phone number or email/);
    }
    expect(passwordProblem(asvs, 'x'.repeat(64), [])).toBeUndefined();
  });

  it('expires mlps passwords after 90 days, asvs never', () => {
    const now = new Date('2026-11-28T00:00:00Z');
    const old = new Date('2026-08-29T00:00:00Z'); // 91 days
    const recent = new Date('2026-09-01T00:00:00Z');
    expect(passwordExpired(mlps, old, now)).toBe(true);
    expect(passwordExpired(mlps, recent, now)).toBe(false);
    expect(passwordExpired(asvs, new Date('2000-01-01'), now)).toBe(false);
  });
});
