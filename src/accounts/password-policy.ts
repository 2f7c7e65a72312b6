import { dictionary } from '@zxcvbn-ts/language-common';

// The baseline every password meets. Issue 4 adds the named profiles (mlps, asvs).
const common = new Set((dictionary['passwords-common'] as string[]).map((p) => p.toLowerCase()));

export const MIN_LENGTH = 8;
export const MAX_LENGTH = 128;

export function passwordProblem(password: string, personal: Array<string | null | undefined>): string | undefined {
  const length = [...password].length;
  if (length < MIN_LENGTH) return `must be at least ${MIN_LENGTH} characters`;
  if (length > MAX_LENGTH) return `must be at most ${MAX_LENGTH} characters`;
  if (common.has(password.toLowerCase())) return 'is one of the most common passwords';
  const lower = password.toLowerCase();
  for (const value of personal) {
    if (value && value.length >= 3 && lower.includes(value.toLowerCase())) return 'must not contain your username, phone number or email';
  }
  return undefined;
}
