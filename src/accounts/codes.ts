import crypto from 'node:crypto';
import type { Db } from '../db/connect.ts';

// One-time codes: 6 digits, valid 10 minutes, single use, at most 5 tries, and a new
// one for the same address at most once a minute. Stored as an HMAC under a key derived
// from the master key: a million possible codes would not survive a plain hash.

export type CodePurpose = 'register' | 'reset' | 'contact';

const CODE_RULES = { digits: 6, ttlSeconds: 600, maxAttempts: 5, resendSeconds: 60 };

export class ResendTooSoon extends Error {
  readonly retryAfter: number;
  constructor(retryAfter: number) {
    super(`wait ${retryAfter} s before asking for another code`);
    this.retryAfter = retryAfter;
  }
}

export function codeKey(masterKey: Buffer): Buffer {
  return Buffer.from(crypto.hkdfSync('sha256', masterKey, Buffer.alloc(0), 'sme-passport verification codes', 32));
}

const hmac = (key: Buffer, purpose: CodePurpose, destination: string, code: string) =>
  crypto.createHmac('sha256', key).update(`${purpose}\n${destination}\n${code}`).digest('base64url');

export async function issueCode(db: Db, key: Buffer, purpose: CodePurpose, destination: string): Promise<string> {
  return db.transaction(async (trx) => {
    // Serialise issuers for one address, so two nodes cannot both pass the resend check.
    await trx.raw('SELECT pg_advisory_xact_lock(hashtext(?))', [`code:${purpose}:${destination}`]);
    const recent = await trx('verification_codes')
      .where({ purpose, destination })
      .where('created_at', '>', trx.raw("now() - ? * interval '1 second'", [CODE_RULES.resendSeconds]))
      .first(trx.raw(`ceil(extract(epoch FROM created_at + ? * interval '1 second' - now()))::int AS wait`, [CODE_RULES.resendSeconds]));
    if (recent) throw new ResendTooSoon(Math.max(1, recent.wait));
    const code = String(crypto.randomInt(0, 10 ** CODE_RULES.digits)).padStart(CODE_RULES.digits, '0');
    await trx('verification_codes').where({ purpose, destination }).whereNull('consumed_at').update({ consumed_at: trx.fn.now() });
    await trx('verification_codes').insert({
      purpose,
      destination,
      code_hmac: hmac(key, purpose, destination, code),
      expires_at: trx.raw("now() + ? * interval '1 second'", [CODE_RULES.ttlSeconds]),
    });
    return code;
  });
}

// True once for the right code; a wrong one uses up a try. The newest code counts.
export async function useCode(db: Db, key: Buffer, purpose: CodePurpose, destination: string, code: string): Promise<boolean> {
  const row = await db('verification_codes')
    .where({ purpose, destination })
    .whereNull('consumed_at')
    .where('expires_at', '>', db.fn.now())
    .where('attempts', '<', CODE_RULES.maxAttempts)
    .orderBy('created_at', 'desc')
    .first('id', 'code_hmac');
  if (!row) return false;
  const given = hmac(key, purpose, destination, code.trim());
  if (given.length === row.code_hmac.length && crypto.timingSafeEqual(Buffer.from(given), Buffer.from(row.code_hmac))) {
    const used = await db('verification_codes').where({ id: row.id }).whereNull('consumed_at').update({ consumed_at: db.fn.now() });
    return used === 1;
  }
  await db('verification_codes').where({ id: row.id }).increment('attempts', 1);
  return false;
}

export async function purgeOldCodes(db: Db): Promise<number> {
  return db('verification_codes').where('expires_at', '<', db.raw("now() - interval '1 day'")).delete();
}
