import { dictionary } from '@zxcvbn-ts/language-common';
import { problem, type Problem } from '../problems.ts';

// Two named profiles, because the two standards disagree (DOMAIN.md): MLPS 2.0 level 3
// as assessors usually read it (composition, 90-day expiry, no reuse of the last 5),
// and OWASP ASVS 5.0 (length only, no composition, no expiry). Both refuse the most
// common passwords and ones containing the person's own identifiers.

export type PasswordPolicy = {
  name: 'mlps' | 'asvs';
  minLength: number;
  maxLength: number;
  minClasses: number; // of lower case, upper case, digits, other characters
  maxAgeDays: number | null;
  historySize: number; // earlier passwords that may not be used again (the current one counts)
};

export const PASSWORD_POLICIES: Record<PasswordPolicy['name'], PasswordPolicy> = {
  mlps: { name: 'mlps', minLength: 8, maxLength: 128, minClasses: 3, maxAgeDays: 90, historySize: 5 },
  asvs: { name: 'asvs', minLength: 8, maxLength: 128, minClasses: 0, maxAgeDays: null, historySize: 0 },
};

const common = new Set((dictionary['passwords-common'] as string[]).map((p) => p.toLowerCase()));

const CLASSES = [/\p{Ll}/u, /\p{Lu}/u, /\p{Nd}/u, /[^\p{Ll}\p{Lu}\p{Nd}]/u];

export function passwordProblem(policy: PasswordPolicy, password: string, personal: Array<string | null | undefined>): Problem | undefined {
  const length = [...password].length;
  if (length < policy.minLength) return problem('too_short', { minimum: policy.minLength });
  if (length > policy.maxLength) return problem('too_long', { maximum: policy.maxLength });
  const classes = CLASSES.filter((c) => c.test(password)).length;
  if (classes < policy.minClasses) return problem('password_classes', { count: policy.minClasses });
  if (common.has(password.toLowerCase())) return problem('password_common');
  const lower = password.toLowerCase();
  for (const value of personal) {
    if (value && value.length >= 3 && lower.includes(value.toLowerCase())) return problem('password_personal');
  }
  return undefined;
}

export const passwordExpired = (policy: PasswordPolicy, changedAt: Date, now = new Date()) =>
  policy.maxAgeDays !== null && now.getTime() - changedAt.getTime() > policy.maxAgeDays * 86_400_000;
