import type { Account } from '../accounts/accounts.ts';

// Standard claims per scope, advertised in discovery. Issue 3 adds `enterprise`.
export const CLAIMS_BY_SCOPE = {
  openid: ['sub'],
  profile: ['name', 'preferred_username', 'updated_at'],
  email: ['email', 'email_verified'],
  phone: ['phone_number', 'phone_number_verified'],
};

export const SCOPES = ['openid', 'offline_access', 'profile', 'email', 'phone'];

// Phone and email are not proven yet (issue 4 adds verification codes), so they are
// reported unverified.
export function accountClaims(account: Account): Record<string, unknown> {
  return {
    sub: account.id,
    name: account.displayName,
    preferred_username: account.username,
    updated_at: Math.floor(account.updatedAt.getTime() / 1000),
    ...(account.email && { email: account.email, email_verified: false }),
    ...(account.phone && { phone_number: `+86${account.phone}`, phone_number_verified: false }),
  };
}
