import crypto from 'node:crypto';
import { calculateJwkThumbprint, exportJWK, generateKeyPair, type JWK } from 'jose';
import type { Db } from '../db/connect.ts';
import { seal, unseal, type MasterKey } from '../crypto/master-key.ts';
import { InputError, NotFoundError } from '../errors.ts';

// Signing keys (RS256 for compatibility, ES256) and cookie-signing keys live in the
// database so every node signs and verifies with the same set; private parts are
// sealed with the master key. Rotation follows the library's rule: a new key is
// published at once, signs from its active_from on (after relying parties have had
// time to fetch it), and the old one is retired once no token it signed is alive.

export type KeySet = { jwks: { keys: JWK[] }; cookieKeys: string[]; version: string };

type KeyRow = { kid: string; use: 'sig' | 'cookie'; alg: string; private_sealed: string; created_at: Date; active_from: Date; retired_at: Date | null };

const SIGNING_ALGS = ['RS256', 'ES256'] as const;

async function newSigningKey(alg: (typeof SIGNING_ALGS)[number]) {
  const { publicKey, privateKey } = await generateKeyPair(alg, { extractable: true, ...(alg === 'RS256' && { modulusLength: 2048 }) });
  const publicJwk = await exportJWK(publicKey);
  const kid = await calculateJwkThumbprint(publicJwk);
  const privateJwk = { ...(await exportJWK(privateKey)), kid, alg, use: 'sig' };
  return { kid, publicJwk: { ...publicJwk, kid, alg, use: 'sig' }, privateJwk };
}

// Creates whatever is missing. The advisory lock keeps two nodes starting together
// from both creating a first key set.
export async function ensureKeys(db: Db, masterKey: MasterKey): Promise<void> {
  await db.transaction(async (trx) => {
    await trx.raw("SELECT pg_advisory_xact_lock(hashtext('sme-passport:keys'))");
    const live: Array<Pick<KeyRow, 'use' | 'alg'>> = await trx('keys').whereNull('retired_at').select('use', 'alg');
    for (const alg of SIGNING_ALGS) {
      if (live.some((k) => k.use === 'sig' && k.alg === alg)) continue;
      const key = await newSigningKey(alg);
      await trx('keys').insert({ kid: key.kid, use: 'sig', alg, public_jwk: key.publicJwk, private_sealed: seal(masterKey, JSON.stringify(key.privateJwk), `key:${key.kid}`) });
    }
    if (!live.some((k) => k.use === 'cookie')) {
      const kid = crypto.randomUUID();
      await trx('keys').insert({ kid, use: 'cookie', alg: 'HS256', private_sealed: seal(masterKey, crypto.randomBytes(32).toString('base64url'), `key:${kid}`) });
    }
  });
}

export async function loadKeys(db: Db, masterKey: MasterKey): Promise<KeySet> {
  const rows: KeyRow[] = await db('keys').whereNull('retired_at').orderBy('active_from', 'desc').orderBy('kid');
  const open = (r: KeyRow) => unseal(masterKey, r.private_sealed, `key:${r.kid}`);
  const now = Date.now();
  const signing = rows.filter((r) => r.use === 'sig');
  const active = signing.filter((r) => new Date(r.active_from).getTime() <= now);
  const pending = signing.filter((r) => new Date(r.active_from).getTime() > now);
  return {
    // oidc-provider signs with the first key of each algorithm: the newest active one.
    // Pending keys are published (for relying parties to cache) but sign nothing yet.
    jwks: { keys: [...active, ...pending].map((r) => JSON.parse(open(r)) as JWK) },
    cookieKeys: rows.filter((r) => r.use === 'cookie').map(open),
    version: `${signing.map((r) => r.kid).join(',')}|${active.map((r) => r.kid).join(',')}`,
  };
}

export type KeyInfo = { kid: string; use: 'sig' | 'cookie'; alg: string; createdAt: Date; activeFrom: Date; retiredAt: Date | null };

export async function listKeys(db: Db): Promise<KeyInfo[]> {
  const rows: KeyRow[] = await db('keys').orderBy('created_at').orderBy('kid');
  return rows.map((r) => ({ kid: r.kid, use: r.use, alg: r.alg, createdAt: r.created_at, activeFrom: r.active_from, retiredAt: r.retired_at }));
}

// New RS256 and ES256 keys, published now and signing after `delaySeconds`.
export async function rotateSigningKeys(db: Db, masterKey: MasterKey, delaySeconds: number): Promise<KeyInfo[]> {
  if (!Number.isInteger(delaySeconds) || delaySeconds < 0) throw new InputError('delay', 'key_delay');
  const kids: string[] = [];
  for (const alg of SIGNING_ALGS) {
    const key = await newSigningKey(alg);
    await db('keys').insert({
      kid: key.kid,
      use: 'sig',
      alg,
      public_jwk: key.publicJwk,
      private_sealed: seal(masterKey, JSON.stringify(key.privateJwk), `key:${key.kid}`),
      active_from: db.raw("now() + ? * interval '1 second'", [delaySeconds]),
    });
    kids.push(key.kid);
  }
  return (await listKeys(db)).filter((k) => kids.includes(k.kid));
}

// A retired key is no longer published: tokens it signed stop verifying. The key that
// signs now for its algorithm cannot be retired.
export async function retireKey(db: Db, kid: string): Promise<void> {
  const key = (await listKeys(db)).find((k) => k.kid === kid);
  if (!key || key.retiredAt) throw new NotFoundError('kid', 'key_not_live', { kid });
  if (key.use !== 'sig') throw new InputError('kid', 'key_not_signing');
  const now = Date.now();
  const signingNow = (await listKeys(db))
    .filter((k) => k.use === 'sig' && k.alg === key.alg && !k.retiredAt && new Date(k.activeFrom).getTime() <= now)
    .sort((x, y) => new Date(y.activeFrom).getTime() - new Date(x.activeFrom).getTime())[0];
  if (signingNow?.kid === kid) throw new InputError('kid', 'key_signs_now', { kid, alg: key.alg });
  await db('keys').where({ kid }).update({ retired_at: db.fn.now() });
}
