import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createRemoteJWKSet, decodeProtectedHeader, jwtVerify } from 'jose';
import { createAccount } from '../../src/accounts/accounts.ts';
import { PASSWORD_POLICIES } from '../../src/accounts/password-policy.ts';
import { resolveMasterKey } from '../../src/crypto/master-key.ts';
import { listKeys, retireKey, rotateSigningKeys } from '../../src/oidc/keys.ts';
import { listWindows } from '../../src/windows/windows.ts';
import { browser } from '../helpers/browser.ts';
import { startTestServer, type TestServer } from '../helpers/server.ts';
import { windowSite, type WindowSite } from '../helpers/window-site.ts';
import { eventually } from '../helpers/wait.ts';

// Rotation: the new key is published first, signs after its delay, and the old one is
// retired later; the running server follows without a restart.

let server: TestServer;
let site: WindowSite;
const password = 'Baima-Temple-68AD';

beforeAll(async () => {
  // The test signs in over and over from one address while it waits for the new key.
  server = await startTestServer({ KEYS_REFRESH_SECONDS: '1', SIGN_IN_RATE_LIMIT: '10000/60' });
  const [w] = await listWindows(server.db);
  site = await windowSite(server, { windowId: w!.id, name: 'site' });
  await createAccount(server.db, { username: 'han.yu', displayName: '韩愈', password }, PASSWORD_POLICIES.mlps);
});

afterAll(async () => {
  await server?.close();
});

const published = async () => ((await (await fetch(`${server.url}/jwks`)).json()) as { keys: Array<{ kid: string }> }).keys.map((k) => k.kid).sort();
const idTokenKid = async () => decodeProtectedHeader((await site.signIn(browser(), { identifier: 'han.yu', password })).tokens.id_token!).kid;

describe('signing key rotation', () => {
  it('publishes first, signs after the delay, and retires the old key', async () => {
    const masterKey = resolveMasterKey(Buffer.from(server.masterKey, 'base64'), '/nonexistent');
    const before = await published();
    const oldKid = await idTokenKid();
    expect(before).toContain(oldKid);
    const oldToken = (await site.signIn(browser(), { identifier: 'han.yu', password })).tokens.id_token!;

    const made = await rotateSigningKeys(server.db, masterKey, 5);
    const newRs = made.find((k) => k.alg === 'RS256')!.kid;
    await eventually(async () => (await published()).includes(newRs), { every: 300 });
    expect(await published()).toEqual([...before, ...made.map((k) => k.kid)].sort());
    expect(await idTokenKid()).toBe(oldKid);
    await expect(jwtVerify(oldToken, createRemoteJWKSet(new URL(`${server.url}/jwks`)), { issuer: server.url })).resolves.toBeDefined();

    await eventually(async () => (await idTokenKid()) === newRs, { every: 300 });
    await expect(retireKey(server.db, newRs)).rejects.toThrow(/signs now/);
    await retireKey(server.db, oldKid!);
    await eventually(async () => !(await published()).includes(oldKid!), { every: 300 });
    expect((await listKeys(server.db)).find((k) => k.kid === oldKid)?.retiredAt).toBeTruthy();
    expect(server.errors).toEqual([]);
  });
});
