import crypto from 'node:crypto';
import { calculateJwkThumbprint, exportJWK, generateKeyPair, type JWK } from 'jose';
import type { Db } from '../db/connect.ts';
import { seal, unseal, type MasterKey } from '../crypto/master-key.ts';

// Signing keys (RS256 for compatibility, ES256) and cookie-signing keys live in the
// database so every node signs and verifies with the same set; private parts are
// sealed with the master key. Rotation (publish, then sign, then retire) is issue 5.

export type KeySet = { jwks: { keys: JWK[] }; cookieKeys: string[]; version: string };

type KeyRow = { kid: string; use: 'sig' | 'cookie'; alg: string; private_sealed: string; created_at: Date };

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
  const rows: KeyRow[] = await db('keys').whereNull('retired_at').orderBy('created_at', 'desc').orderBy('kid');
  const open = (r: KeyRow) => unseal(masterKey, r.private_sealed, `key:${r.kid}`);
  return {
    // Newest first: oidc-provider signs with the first key of each algorithm.
    jwks: { keys: rows.filter((r) => r.use === 'sig').map((r) => JSON.parse(open(r)) as JWK) },
    cookieKeys: rows.filter((r) => r.use === 'cookie').map(open),
    version: rows.map((r) => r.kid).join(','),
  };
}
