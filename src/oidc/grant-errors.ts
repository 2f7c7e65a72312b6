import type Provider from 'oidc-provider';

// The token endpoint answers every refused code or refresh token with the same
// "grant request is invalid"; the reason stays in the library's error_detail. The caller
// has already authenticated as the client the grant belongs to, so it is told which
// parameter was wrong and why (as Keycloak does), in words that do not say whether a
// code it does not own exists.
const NAMED: Record<string, string> = {
  'authorization code not found': 'code is unknown, already used, or was issued to another client',
  'authorization code already consumed': 'code was already used; the tokens it gave are revoked',
  'authorization code is expired': 'code is expired (codes are valid for 60 seconds)',
  'authorization code redirect_uri mismatch': 'redirect_uri is not the one the authorization request used',
  'code_verifier must be provided': 'code_verifier is missing (the authorization request sent a code_challenge)',
  'code_verifier does not match code_challenge': 'code_verifier does not match the code_challenge of the authorization request',
  'refresh token not found': 'refresh_token is unknown, revoked, ended with its sign-in session, or was issued to another client',
  'refresh token is expired': 'refresh_token is expired',
  'refresh token already used': 'refresh_token was already used (rotation: use the newest one); the grant is revoked',
  'grant not found': 'the grant behind this code or refresh_token has ended (signed out, or revoked)',
  'grant is expired': 'the grant behind this code or refresh_token has expired',
};

export function nameGrantErrors(provider: Provider): void {
  provider.on('grant.error', (ctx, err) => {
    const detail = (err as { error_detail?: unknown }).error_detail;
    const body = ctx.body as { error?: unknown } | undefined;
    if (typeof detail !== 'string' || body?.error !== 'invalid_grant') return;
    // Another client's code or refresh token reads as an unknown one.
    const key = detail !== 'client mismatch' ? detail : ctx.oidc.params?.grant_type === 'refresh_token' ? 'refresh token not found' : 'authorization code not found';
    const named = Object.hasOwn(NAMED, key) ? NAMED[key] : undefined;
    if (named) ctx.body = { ...body, error_description: named };
  });
}
