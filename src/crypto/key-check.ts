import crypto from 'node:crypto';
import path from 'node:path';
import type { Config } from '../config.ts';
import type { Db } from '../db/connect.ts';
import { resolveMasterKey, SealedWithAnotherKey, unseal, type MasterKey } from './master-key.ts';
import { constantTimeEqual } from './secrets.ts';

// A database's sealed secrets open under one master key. A node or command given
// another (a restore started with the wrong key, a typo in a secret store) is refused
// before it reads or writes anything sealed, with a message naming the cause, instead
// of failing deep in key loading, or sealing new secrets under a second key beside the
// old ones. The database keeps an HMAC of a fixed label under the key: it tells the
// right key from another and says nothing about either.

export class MasterKeyMismatch extends Error {
  constructor(source: string) {
    super(`${source} does not open this database: its secrets were sealed with another master key. Start with the master key kept for this database (README, "Backup and restore").`);
  }
}

const checkValue = (key: MasterKey) => crypto.createHmac('sha256', key).update('sme-passport master key check').digest('base64url');

// A database from before the check: its keys are sealed under the master key, the
// first of them at the first start, before any other secret.
async function opensSealedKey(db: Db, key: MasterKey): Promise<boolean> {
  const sealed: { kid: string; private_sealed: string } | undefined = await db('keys').orderBy('created_at', 'desc').orderBy('kid').first('kid', 'private_sealed');
  if (!sealed) return true;
  try {
    unseal(key, sealed.private_sealed, `key:${sealed.kid}`);
    return true;
  } catch (err) {
    if (err instanceof SealedWithAnotherKey) return false;
    throw err;
  }
}

// The master key this process was given, once it is known to open this database; the
// first to ask writes the check. The advisory lock keeps two nodes starting together
// with different keys from both writing theirs.
export async function openMasterKey(db: Db, config: Pick<Config, 'masterKey' | 'dataDir'>): Promise<MasterKey> {
  const key = resolveMasterKey(config.masterKey, config.dataDir);
  const opens = await db.transaction(async (trx) => {
    await trx.raw("SELECT pg_advisory_xact_lock(hashtext('sme-passport:master-key-check'))");
    const kept: { value: string } | undefined = await trx('master_key_check').first('value');
    if (kept) return constantTimeEqual(kept.value, checkValue(key));
    if (!(await opensSealedKey(trx, key))) return false;
    await trx('master_key_check').insert({ value: checkValue(key) });
    return true;
  });
  if (!opens) throw new MasterKeyMismatch(config.masterKey ? 'MASTER_KEY' : `the master key in ${path.join(config.dataDir, 'master.key')} (MASTER_KEY is unset)`);
  return key;
}
