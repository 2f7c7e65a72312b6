import crypto from 'node:crypto';
import { generateSecret, generateURI, verify } from 'otplib';
import QRCode from 'qrcode';
import type { Db } from '../db/connect.ts';
import { cachedRead, tablesChanged } from '../db/cache.ts';
import { seal, unseal, type MasterKey } from '../crypto/master-key.ts';
import { sha256 } from '../crypto/secrets.ts';
import { ConflictError, InputError } from '../errors.ts';
import { DEFAULT_BRANDING } from '../http/presentation.ts';

// TOTP (RFC 6238, otplib) as the second factor, with 10 single-use recovery codes.
// Enrolment keeps no state on the server until the person proves their authenticator
// works: the new secret travels in the form, sealed to this account with the master key.

const RECOVERY_CODES = 10;

// A code accepted within ±30 s, and the 30-second step it belongs to.
async function checkCode(secret: string, token: string): Promise<number | undefined> {
  const result = await verify({ secret, token, epochTolerance: 30 }).catch(() => undefined);
  return result?.valid ? (result as { timeStep: number }).timeStep : undefined;
}

export type Enrolment = { sealed: string; secret: string; uri: string; qrSvg: string };

// A new secret, or (when a mistyped code sends the form back) the one already shown.
// The authenticator app lists it under the platform's name (PLATFORM_NAME).
export async function startEnrolment(masterKey: MasterKey, account: { id: string; username: string }, sealed?: string, platformName = DEFAULT_BRANDING.platformName['zh-CN']): Promise<Enrolment> {
  let secret: string | undefined;
  try {
    secret = sealed ? unseal(masterKey, sealed, `totp-enrolment:${account.id}`) : undefined;
  } catch {
    secret = undefined;
  }
  secret ??= generateSecret();
  const uri = generateURI({ issuer: platformName, label: account.username, secret });
  return { sealed: seal(masterKey, secret, `totp-enrolment:${account.id}`), secret, uri, qrSvg: await QRCode.toString(uri, { type: 'svg', margin: 1, width: 200 }) };
}

const newRecoveryCode = () => crypto.randomBytes(8).toString('hex').replace(/(.{4})(?!$)/g, '$1-');
const normaliseRecovery = (code: string) => code.trim().toLowerCase().replace(/[^0-9a-f]/g, '');

// Confirms with a code from the authenticator; returns the recovery codes, shown once.
// Only a first factor: an existing one is never replaced here (it is removed first, with
// the password, from the account center), and of two confirmations racing, one wins.
export async function confirmEnrolment(db: Db, masterKey: MasterKey, accountId: string, sealed: string, code: string): Promise<string[]> {
  let secret: string;
  try {
    secret = unseal(masterKey, sealed, `totp-enrolment:${accountId}`);
  } catch {
    throw new InputError('totp', 'totp_form');
  }
  const step = await checkCode(secret, code.trim());
  if (step === undefined) throw new InputError('code', 'totp_code');
  const codes = Array.from({ length: RECOVERY_CODES }, newRecoveryCode);
  await db.transaction(async (trx) => {
    const inserted = await trx('totp_factors')
      .insert({ account_id: accountId, secret_sealed: seal(masterKey, secret, `totp:${accountId}`), last_time_step: step })
      .onConflict('account_id')
      .ignore()
      .returning('account_id');
    if (inserted.length === 0) throw new ConflictError('totp', 'totp_exists');
    tablesChanged(trx, 'totp_factors');
    await trx('recovery_codes').where({ account_id: accountId }).delete();
    await trx('recovery_codes').insert(codes.map((c) => ({ account_id: accountId, code_hash: sha256(normaliseRecovery(c)) })));
  });
  return codes;
}

// Asked at every sign-in and on the account page: cached per node (src/db/cache.ts).
export const hasTotp = cachedRead({
  name: 'totp',
  tables: ['totp_factors'],
  max: 10_000,
  key: (accountId: string) => accountId,
  load: async (db: Db, accountId: string) => (await db('totp_factors').where({ account_id: accountId }).first('account_id')) !== undefined,
});

export async function removeTotp(db: Db, accountId: string): Promise<void> {
  await db.transaction(async (trx) => {
    await trx('recovery_codes').where({ account_id: accountId }).delete();
    await trx('totp_factors').where({ account_id: accountId }).delete();
    tablesChanged(trx, 'totp_factors');
  });
}

// A current authenticator code (each works once: its time step must be newer than the
// last one accepted), or an unused recovery code.
export async function verifySecondFactor(db: Db, masterKey: MasterKey, accountId: string, input: string): Promise<'otp' | 'recovery' | undefined> {
  const factor = await db('totp_factors').where({ account_id: accountId }).first('secret_sealed');
  if (!factor) return undefined;
  const token = input.trim();
  if (/^\d{6}$/.test(token)) {
    const secret = unseal(masterKey, factor.secret_sealed, `totp:${accountId}`);
    const step = await checkCode(secret, token);
    if (step === undefined) return undefined;
    const fresh = await db('totp_factors').where({ account_id: accountId }).where('last_time_step', '<', step).update({ last_time_step: step });
    tablesChanged(db, 'totp_factors');
    return fresh === 1 ? 'otp' : undefined;
  }
  const used = await db('recovery_codes')
    .where({ account_id: accountId, code_hash: sha256(normaliseRecovery(token)) })
    .whereNull('used_at')
    .update({ used_at: db.fn.now() });
  return used === 1 ? 'recovery' : undefined;
}
