import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import crypto from 'node:crypto';
import { createAdapter, purgeExpiredArtifacts } from '../src/oidc/adapter.ts';
import { purgeExpired } from '../src/purge.ts';
import { ensureKeys, loadKeys } from '../src/oidc/keys.ts';
import { outgoingFetch } from '../src/oidc/outgoing-fetch.ts';
import { testDatabase, type TestDatabase } from './helpers/database.ts';
import { statementsOf } from './helpers/statements.ts';

let database: TestDatabase;

beforeAll(async () => {
  database = await testDatabase();
});

afterAll(async () => {
  await database?.close();
});

describe('the provider’s artifact store', () => {
  it('consumes a code once, and a second consumption revokes its grant', async () => {
    const adapter = createAdapter(database.db);
    const codes = adapter('AuthorizationCode');
    const tokens = adapter('AccessToken');
    await codes.upsert('code-1', { grantId: 'grant-1', kind: 'AuthorizationCode' }, 60);
    await tokens.upsert('at-1', { grantId: 'grant-1', kind: 'AccessToken' }, 3600);
    await codes.consume('code-1');
    expect((await codes.find('code-1'))?.consumed).toEqual(expect.any(Number));
    await expect(codes.consume('code-1')).rejects.toMatchObject({ error: 'invalid_grant' });
    expect(await tokens.find('at-1')).toBeUndefined();
    expect(await codes.find('code-1')).toBeUndefined();
  });

  it('finds by uid and user code, hides expired rows, and purges them', async () => {
    const sessions = createAdapter(database.db)('Session');
    await sessions.upsert('s-live', { uid: 'uid-live', kind: 'Session' }, 60);
    await sessions.upsert('s-old', { uid: 'uid-old', kind: 'Session', accountId: '7f7c7a9e-6c4b-4e55-9d7a-5b0c5b8f0a11' }, 60);
    await database.db('oidc_artifacts').where({ id: 's-old' }).update({ expires_at: new Date(Date.now() - 1000) });
    expect(await sessions.findByUid('uid-live')).toMatchObject({ uid: 'uid-live' });
    expect(await sessions.findByUid('uid-old')).toBeUndefined();
    // Expired sessions are not the artifact purge's: they go on record as they go.
    expect(await purgeExpiredArtifacts(database.db)).toBe(0);
    expect(await purgeExpired(database.db)).toBeGreaterThanOrEqual(1);
    expect(await database.db('oidc_artifacts').where({ id: 's-old' }).first()).toBeUndefined();
    expect(await database.db('oidc_artifacts').where({ id: 's-live' }).first()).toBeDefined();
    expect(await database.db('audit_events').where({ event: 'session.expired' }).select('target', 'after')).toEqual([
      { target: 'account:7f7c7a9e-6c4b-4e55-9d7a-5b0c5b8f0a11', after: { sessionUid: 'uid-old', expiredAt: expect.any(String) } },
    ]);
  });

  it('saves what concurrent requests save in one statement, and answers each save for itself', async () => {
    const tokens = createAdapter(database.db)('AccessToken');
    const save = (id: string, extra: Record<string, unknown> = {}) => tokens.upsert(id, { kind: 'AccessToken', grantId: 'grant-g', ...extra }, 60);
    const ids = ['g-1', 'g-2', 'g-3', 'g-4', 'g-5'];
    expect(await statementsOf(database.db, () => Promise.all(ids.map((id) => save(id))))).toHaveLength(1);
    for (const id of ids) expect(await tokens.find(id)).toMatchObject({ grantId: 'grant-g' });

    // A row the database refuses (an index entry past PostgreSQL's size limit) fails
    // its own save only; one artifact saved twice in a group ends as the later save.
    const results = await Promise.allSettled([
      save('g-6', { scope: 'first' }),
      save('g-refused', { uid: crypto.randomBytes(8000).toString('hex') }),
      save('g-6', { scope: 'second' }),
      save('g-7'),
    ]);
    expect(results.map((r) => r.status)).toEqual(['fulfilled', 'rejected', 'fulfilled', 'fulfilled']);
    expect(await tokens.find('g-6')).toMatchObject({ scope: 'second' });
    expect(await tokens.find('g-7')).toMatchObject({ grantId: 'grant-g' });
    expect(await tokens.find('g-refused')).toBeUndefined();
  });

  it('accepts a client assertion id once', async () => {
    const replay = createAdapter(database.db)('ReplayDetection');
    await replay.upsert('jti-1', { iss: 'c', kind: 'ReplayDetection' }, 60);
    await expect(replay.upsert('jti-1', { iss: 'c', kind: 'ReplayDetection' }, 60)).rejects.toMatchObject({ error: 'invalid_client' });
  });
});

describe('keys', () => {
  it('keeps RS256 and ES256 signing keys and a cookie key, private parts sealed, created once', async () => {
    const masterKey = crypto.randomBytes(32);
    await Promise.all([ensureKeys(database.db, masterKey), ensureKeys(database.db, masterKey)]);
    const rows = await database.db('keys');
    expect(rows.map((r) => `${r.use}:${r.alg}`).sort()).toEqual(['cookie:HS256', 'sig:ES256', 'sig:RS256']);
    for (const row of rows) {
      expect(row.private_sealed).toMatch(/^v1\./);
      expect(row.private_sealed).not.toMatch(/"d":/);
      expect(JSON.stringify(row.public_jwk ?? {})).not.toMatch(/"d":/);
    }
    const keys = await loadKeys(database.db, masterKey);
    expect(keys.jwks.keys.map((k) => k.alg).sort()).toEqual(['ES256', 'RS256']);
    expect(keys.jwks.keys.every((k) => typeof k.d === 'string')).toBe(true);
    expect(keys.cookieKeys).toHaveLength(1);
    await expect(loadKeys(database.db, crypto.randomBytes(32))).rejects.toThrow(/master key/);
  });
});

describe('outgoing requests', () => {
  it('refuses origins no live client registered', async () => {
    const fetcher = outgoingFetch(database.db);
    await expect(fetcher('http://127.0.0.1:1/backchannel', { method: 'POST' })).rejects.toThrow(/refused: not a registered client endpoint/);
    await expect(fetcher('http://169.254.169.254/latest/meta-data', {})).rejects.toThrow(/refused/);
  });
});
