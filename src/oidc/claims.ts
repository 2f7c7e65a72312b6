import type { Account } from '../accounts/accounts.ts';
import type { Membership } from '../enterprises/memberships.ts';

// Claims per scope, advertised in discovery: the standard ones for the person, and
// `enterprise` for whom they act.
export const CLAIMS_BY_SCOPE = {
  // How the person signed in travels with every ID token, so a window can tell a
  // password from a second factor without asking for it.
  openid: ['sub', 'acr', 'amr', 'auth_time'],
  enterprise: ['enterprise'],
  profile: ['name', 'preferred_username', 'updated_at'],
  email: ['email', 'email_verified'],
  phone: ['phone_number', 'phone_number_verified'],
};

export const SCOPES = ['openid', 'offline_access', 'profile', 'email', 'phone', 'enterprise'];

// A contact counts as verified once proven with a code (registration, account page).
export function accountClaims(account: Account): { sub: string; [claim: string]: unknown } {
  return {
    sub: account.id,
    name: account.displayName,
    preferred_username: account.username,
    updated_at: Math.floor(account.updatedAt.getTime() / 1000),
    ...(account.email && { email: account.email, email_verified: account.emailVerified }),
    ...(account.phone && { phone_number: `+86${account.phone}`, phone_number_verified: account.phoneVerified }),
  };
}

export function enterpriseClaim({ enterprise, role }: Membership): Record<string, unknown> {
  const { id, uscc, name, type, region, status } = enterprise;
  return { id, uscc, name, type, region, status, role };
}

// Authentication context classes a window can ask for with acr_values: a password
// alone, or a password and a second factor.
export const ACR = { password: 'urn:sme-passport:acr:password', mfa: 'urn:sme-passport:acr:mfa' } as const;
