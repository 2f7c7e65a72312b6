import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as oidc from 'openid-client';
import { exportJWK, generateKeyPair } from 'jose';
import { createAccount } from '../../src/accounts/accounts.ts';
import { PASSWORD_POLICIES } from '../../src/accounts/password-policy.ts';
import { createClient, deleteClient, rotateClientSecret, setClientDisabled, type NewClient } from '../../src/windows/clients.ts';
import { createWindow, setWindowDisabled } from '../../src/windows/windows.ts';
import { browser } from '../helpers/browser.ts';
import { startTestServer, type TestServer } from '../helpers/server.ts';
import { windowSite } from '../helpers/window-site.ts';

// What the administrators' client functions do to a live provider: a relying party
// (openid-client) against the real server, with no restart in between.

const person = { username: 'li.na', displayName: '李娜', phone: '13712345678', email: 'li.na@example.cn', password: 'Yellow-River-Delta-88' };

let server: TestServer;
let serverMetadata: oidc.ServerMetadata;
let windowId: number;

beforeAll(async () => {
  server = await startTestServer();
  windowId = (await createWindow(server.db, { kind: 'service', name: '客户端管理测试机构' })).id;
  await createAccount(server.db, person, PASSWORD_POLICIES.mlps);
  const discovered = await oidc.discovery(new URL(server.url), 'discovery-only', undefined, oidc.None(), { execute: [oidc.allowInsecureRequests] });
  serverMetadata = discovered.serverMetadata();
});

afterAll(async () => {
  await server?.close();
});

// A back end of a window, authenticating with a secret or a private key.
function relyingParty(clientId: string, auth: string | oidc.ClientAuth): oidc.Configuration {
  const config = typeof auth === 'string' ? new oidc.Configuration(serverMetadata, clientId, auth) : new oidc.Configuration(serverMetadata, clientId, {}, auth);
  oidc.allowInsecureRequests(config);
  return config;
}

const machineClient = (extra: Partial<NewClient> = {}) => createClient(server.db, { windowId, name: 'machine', grantTypes: ['client_credentials'], ...extra });

const tokenWith = (clientId: string, auth: string | oidc.ClientAuth, parameters: Record<string, string> = {}) =>
  oidc.clientCredentialsGrant(relyingParty(clientId, auth), parameters);

describe('rotating a client secret', () => {
  it('accepts the old and the new secret during the grace period, and only the new one after it', async () => {
    const { clientId, clientSecret: old } = await machineClient();
    await expect(tokenWith(clientId, old!)).resolves.toHaveProperty('access_token');

    const { clientSecret: fresh } = await rotateClientSecret(server.db, clientId, 3600);
    await expect(tokenWith(clientId, fresh)).resolves.toHaveProperty('access_token');
    await expect(tokenWith(clientId, old!)).resolves.toHaveProperty('access_token');
    await expect(tokenWith(clientId, 'not-the-secret')).rejects.toMatchObject({ error: 'invalid_client' });

    // The grace period ends: no restart, no cache to wait for.
    await server.db('clients').where({ client_id: clientId }).update({ previous_secret_expires_at: server.db.raw("now() - interval '1 second'") });
    await expect(tokenWith(clientId, old!)).rejects.toMatchObject({ error: 'invalid_client' });
    await expect(tokenWith(clientId, fresh)).resolves.toHaveProperty('access_token');
  });

  it('drops the old secret at once with no grace period', async () => {
    const { clientId, clientSecret: old } = await machineClient({ authMethod: 'client_secret_post' });
    await expect(tokenWith(clientId, oidc.ClientSecretPost(old!))).resolves.toHaveProperty('access_token');
    const { clientSecret: fresh } = await rotateClientSecret(server.db, clientId, 0);
    await expect(tokenWith(clientId, oidc.ClientSecretPost(old!))).rejects.toMatchObject({ error: 'invalid_client' });
    await expect(tokenWith(clientId, oidc.ClientSecretPost(fresh))).resolves.toHaveProperty('access_token');
  });
});

describe('disabling and deleting', () => {
  it('refuses the clients of a disabled window at once, and takes them back when it is enabled', async () => {
    const own = await createWindow(server.db, { kind: 'service', name: '将被停用的机构' });
    const { clientId, clientSecret } = await machineClient({ windowId: own.id });
    await expect(tokenWith(clientId, clientSecret!)).resolves.toHaveProperty('access_token');
    await setWindowDisabled(server.db, own.id, true);
    await expect(tokenWith(clientId, clientSecret!)).rejects.toMatchObject({ error: 'invalid_client' });
    await setWindowDisabled(server.db, own.id, false);
    await expect(tokenWith(clientId, clientSecret!)).resolves.toHaveProperty('access_token');
  });

  it('refuses a disabled client until it is enabled', async () => {
    const { clientId, clientSecret } = await machineClient();
    await setClientDisabled(server.db, clientId, true);
    await expect(tokenWith(clientId, clientSecret!)).rejects.toMatchObject({ error: 'invalid_client' });
    await setClientDisabled(server.db, clientId, false);
    await expect(tokenWith(clientId, clientSecret!)).resolves.toHaveProperty('access_token');
  });

  it('refuses a deleted client, and the tokens it was issued stop working', async () => {
    const site = await windowSite(server, { windowId, name: 'to-be-deleted' });
    const { tokens, claims } = await site.signIn(browser(), { identifier: person.username, password: person.password });
    // Another back end of the same window checks the site's tokens (introspection).
    const peer = await machineClient();
    const introspect = () => oidc.tokenIntrospection(relyingParty(peer.clientId, peer.clientSecret!), tokens.access_token);
    expect((await introspect()).active).toBe(true);
    expect((await oidc.fetchUserInfo(site.config, tokens.access_token, claims.sub)).sub).toBe(claims.sub);

    await deleteClient(server.db, site.clientId);
    expect((await introspect()).active).toBe(false);
    await expect(oidc.fetchUserInfo(site.config, tokens.access_token, claims.sub)).rejects.toMatchObject({ status: 401, cause: [{ parameters: { error: 'invalid_token' } }] });
    const again = await site.authorize(browser());
    expect(again.visit.kind === 'page' && again.visit.status).toBe(400);
  });
});

describe('what a client may ask for', () => {
  it('refuses a scope the client is not allowed (invalid_scope), at the authorization and the token endpoint', async () => {
    const site = await windowSite(server, { windowId, name: 'openid-only', scopes: ['openid'] });
    const refused = await site.authorize(browser(), { scope: 'openid profile' });
    expect(refused.visit.kind).toBe('redirect');
    const callback = refused.visit.kind === 'redirect' ? refused.visit.to.searchParams : undefined;
    expect(callback?.get('error')).toBe('invalid_scope');
    expect(callback?.get('error_description')).toBe('requested scope is not allowed');

    const { tokens, claims } = await site.signIn(browser(), { identifier: person.username, password: person.password }, { scope: 'openid' });
    expect(tokens.scope).toBe('openid');
    expect(claims.name).toBeUndefined();

    const machine = await machineClient({ scopes: ['openid'] });
    await expect(tokenWith(machine.clientId, machine.clientSecret!, { scope: 'profile' })).rejects.toMatchObject({ error: 'invalid_scope' });
  });

  it('authenticates a private_key_jwt client with its inline public keys', async () => {
    const { publicKey, privateKey } = await generateKeyPair('ES256');
    const jwk = { ...(await exportJWK(publicKey)), kty: 'EC' as const, kid: 'window-key-1', alg: 'ES256', use: 'sig' };
    const { clientId } = await machineClient({ authMethod: 'private_key_jwt', jwks: { keys: [jwk] } });
    await expect(tokenWith(clientId, oidc.PrivateKeyJwt({ key: privateKey, kid: 'window-key-1' }))).resolves.toHaveProperty('access_token');

    const stranger = await generateKeyPair('ES256');
    await expect(tokenWith(clientId, oidc.PrivateKeyJwt({ key: stranger.privateKey, kid: 'window-key-1' }))).rejects.toMatchObject({ error: 'invalid_client' });
  });
});

describe('the server', () => {
  it('logged no errors', () => {
    expect(server.errors).toEqual([]);
  });
});
