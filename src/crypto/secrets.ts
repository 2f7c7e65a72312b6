import crypto from 'node:crypto';

// High-entropy secrets (client secrets) are stored as a SHA-256 digest: a slow hash
// adds nothing against 256 random bits and would cap the token endpoint (DESIGN.md).

export const randomSecret = (bytes = 32): string => crypto.randomBytes(bytes).toString('base64url');

export const sha256 = (value: string): string => crypto.createHash('sha256').update(value).digest('base64url');

export function constantTimeEqual(a: string, b: string): boolean {
  const left = crypto.createHash('sha256').update(a).digest();
  const right = crypto.createHash('sha256').update(b).digest();
  return crypto.timingSafeEqual(left, right) && a.length === b.length;
}
