import argon2 from 'argon2';
import { countPasswordCheck } from '../http/metrics.ts';

// argon2id with OWASP's headline parameters (DOMAIN.md). The PHC string keeps the
// parameters with the hash, so a change here rehashes at the next sign-in.
const params = { type: argon2.argon2id, memoryCost: 19456, timeCost: 2, parallelism: 1 } as const;

export const hashPassword = (password: string): Promise<string> => argon2.hash(password, params);

export const needsRehash = (hash: string): boolean => argon2.needsRehash(hash, params);

let dummyHash: Promise<string> | undefined;

// Verifies against a real hash, or against a throwaway one when there is no account,
// so an unknown identifier costs the same time as a wrong password.
export async function verifyPassword(hash: string | undefined, password: string): Promise<boolean> {
  countPasswordCheck();
  if (hash === undefined) {
    dummyHash ??= hashPassword('unknown-account-placeholder');
    await argon2.verify(await dummyHash, password);
    return false;
  }
  return argon2.verify(hash, password);
}
