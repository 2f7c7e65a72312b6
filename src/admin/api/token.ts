import type Provider from 'oidc-provider';
import type { Db } from '../../db/connect.ts';
import { findAccount } from '../../accounts/accounts.ts';
import { rolesOf, type RoleGrant } from '../../accounts/admin-roles.ts';
import { ACR } from '../../oidc/claims.ts';

// The admin API trusts one thing: an access token this provider issued for it (its
// audience, with the admin scope), from a sign-in that is still alive (with a second
// factor for anyone holding a role), held by an active person; what they may do
// depends on the roles they hold now. Roles are read
// on every call, so a revoked role stops working at once.

export const ADMIN_API_PATH = '/api/admin/v1';
export const ADMIN_SCOPE = 'admin';
export const ADMIN_TOKEN_TTL_SECONDS = 1800;
export const adminApiAudience = (issuer: string) => `${issuer}${ADMIN_API_PATH}`;

export type Principal = { accountId: string; username: string; roles: RoleGrant[] };

// 401: the token is missing or not one this API accepts (RFC 6750 error codes).
export class Unauthenticated extends Error {
  readonly code: 'invalid_token' | 'invalid_request';
  constructor(code: 'invalid_token' | 'invalid_request', message: string) {
    super(message);
    this.code = code;
  }
}

const BEARER = /^Bearer ([A-Za-z0-9\-._~+/]+=*)$/;

export async function authenticate(provider: Provider, db: Db, issuer: string, authorization: string | undefined): Promise<Principal> {
  const match = BEARER.exec(authorization ?? '');
  if (!match) throw new Unauthenticated('invalid_request', 'send an access token in the Authorization header: Bearer <token>');
  const token = await provider.AccessToken.find(match[1]!);
  if (!token) throw new Unauthenticated('invalid_token', 'the access token is unknown, expired or revoked');
  const audiences = Array.isArray(token.aud) ? token.aud : [token.aud];
  if (!audiences.includes(adminApiAudience(issuer)) || !token.scopes.has(ADMIN_SCOPE)) {
    throw new Unauthenticated('invalid_token', 'the access token is not for the admin API');
  }
  if (!token.accountId || !(await provider.Client.find(token.clientId!))) throw new Unauthenticated('invalid_token', 'the access token has no live client or person');
  const session = token.sessionUid ? await provider.Session.findByUid(token.sessionUid) : undefined;
  if (!session || session.accountId !== token.accountId) throw new Unauthenticated('invalid_token', 'the sign-in this token came from has ended');
  const account = await findAccount(db, token.accountId);
  if (!account || account.status !== 'active') throw new Unauthenticated('invalid_token', 'the account is not active');
  const roles = await rolesOf(db, account.id);
  // A person without a role can do nothing here and is answered 403 per call.
  if (roles.length > 0 && session.acr !== ACR.mfa) throw new Unauthenticated('invalid_token', 'administrators must sign in with a second factor');
  return { accountId: account.id, username: account.username, roles };
}
