import crypto from 'node:crypto';
import Provider, { type ClientMetadata, type Configuration, type KoaContextWithOIDC } from 'oidc-provider';
import type { Spec } from './common.ts';

// The ceiling: oidc-provider with nothing of ours around it. In-memory adapter (the
// default), static clients, any login accepted by its development login page. It keeps
// the settings that change the work per request the same as ours: an RS256 2048-bit
// signing key (ours signs ID tokens with its RS256 key), signed lax cookies, the same
// lifetimes, no consent for these clients (the same loadExistingGrant idea as
// src/oidc/provider.ts), and a refresh token on every code flow, as ours gives a
// first-party window, with sid in every ID token.

async function loadExistingGrant(ctx: KoaContextWithOIDC) {
  const { client, session, provider } = ctx.oidc;
  const grantId = ctx.oidc.result?.consent?.grantId ?? session!.grantIdFor(client!.clientId);
  const existing = grantId ? await provider.Grant.find(grantId) : undefined;
  const grant = existing ?? new provider.Grant({ clientId: client!.clientId, accountId: session!.accountId! });
  const before = existing?.getOIDCScope();
  const scopes = [...ctx.oidc.requestParamOIDCScopes].join(' ');
  if (scopes) grant.addOIDCScope(scopes);
  if (grant.getOIDCScope() !== before) await grant.save();
  return grant;
}

export function createBareProvider(issuer: string, spec: Spec): Provider {
  const { service, a, b } = spec.clients;
  const codeClient = (c: { id: string; secret: string }): ClientMetadata => ({
    client_id: c.id,
    client_secret: c.secret,
    redirect_uris: [spec.redirectUri],
    grant_types: ['authorization_code', 'refresh_token'],
    response_types: ['code'],
    token_endpoint_auth_method: 'client_secret_basic',
  });
  const { privateKey } = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
  const configuration: Configuration = {
    clients: [
      { client_id: service.id, client_secret: service.secret, redirect_uris: [], grant_types: ['client_credentials'], response_types: [], token_endpoint_auth_method: 'client_secret_basic' },
      codeClient(a),
      codeClient(b),
    ],
    findAccount: (_ctx, sub) => ({ accountId: sub, claims: () => ({ sub }) }),
    jwks: { keys: [{ ...privateKey.export({ format: 'jwk' }), alg: 'RS256', use: 'sig', kid: 'bench' }] as never },
    cookies: {
      keys: [crypto.randomBytes(32).toString('base64url')],
      long: { httpOnly: true, sameSite: 'lax', signed: true },
      short: { httpOnly: true, sameSite: 'lax', signed: true },
    },
    responseTypes: ['code'],
    features: { devInteractions: { enabled: true }, clientCredentials: { enabled: true } },
    loadExistingGrant,
    issueRefreshToken: async (_ctx, client) => client.grantTypeAllowed('refresh_token'),
    // Ours' lifetimes (which also keeps the library from warning about its defaults).
    ttl: { AccessToken: 3600, AuthorizationCode: 60, ClientCredentials: 3600, IdToken: 3600, Interaction: 1800, RefreshToken: 14 * 24 * 3600, Session: 12 * 3600, Grant: 14 * 24 * 3600 },
  };
  const provider = new Provider(issuer, configuration);
  Object.defineProperty(provider.Client.prototype, 'includeSid', { value: () => true });
  provider.on('server_error', (_ctx, err) => console.error('bare provider server_error', err));
  return provider;
}
