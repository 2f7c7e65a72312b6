import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';

// Secrets at rest (private keys, later TOTP seeds) are sealed with AES-256-GCM under
// the master key. Format: v1.<iv>.<tag>.<ciphertext>, base64url parts.

export type MasterKey = Buffer;

// A sealed value that does not open under the key given: sealed under another one (or changed).
export class SealedWithAnotherKey extends Error {}

// In development the key is generated once and kept beside the embedded database;
// production refuses to start without MASTER_KEY (config.ts).
export function resolveMasterKey(configured: Buffer | undefined, dataDir: string): MasterKey {
  if (configured) return configured;
  const file = path.join(dataDir, 'master.key');
  if (fs.existsSync(file)) {
    const key = Buffer.from(fs.readFileSync(file, 'utf8').trim(), 'base64');
    if (key.length !== 32) throw new Error(`${file} does not hold a 32-byte base64 key; remove it only if the data folder is disposable`);
    return key;
  }
  fs.mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  const key = crypto.randomBytes(32);
  fs.writeFileSync(file, key.toString('base64') + '\n', { mode: 0o600, flag: 'wx' });
  return key;
}

export function seal(key: MasterKey, plaintext: string, context: string): string {
  const iv = crypto.randomBytes(12);
  const cipher = crypto.createCipheriv('aes-256-gcm', key, iv);
  cipher.setAAD(Buffer.from(context));
  const body = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
  return ['v1', iv.toString('base64url'), cipher.getAuthTag().toString('base64url'), body.toString('base64url')].join('.');
}

export function unseal(key: MasterKey, sealed: string, context: string): string {
  const [version, iv, tag, body] = sealed.split('.');
  if (version !== 'v1' || !iv || !tag || body === undefined) throw new Error('sealed value has an unknown format');
  const decipher = crypto.createDecipheriv('aes-256-gcm', key, Buffer.from(iv, 'base64url'));
  decipher.setAAD(Buffer.from(context));
  decipher.setAuthTag(Buffer.from(tag, 'base64url'));
  try {
    return Buffer.concat([decipher.update(Buffer.from(body, 'base64url')), decipher.final()]).toString('utf8');
  } catch {
    throw new SealedWithAnotherKey(`cannot decrypt ${context}: the master key is not the one it was sealed with`);
  }
}
