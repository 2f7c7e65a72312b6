import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { resolveMasterKey, seal, unseal } from '../../src/crypto/master-key.ts';

describe('secrets sealed with the master key', () => {
  const key = crypto.randomBytes(32);

  it('round-trips, and refuses another key or another context', () => {
    const sealed = seal(key, 'private jwk', 'key:abc');
    expect(sealed).not.toContain('private jwk');
    expect(unseal(key, sealed, 'key:abc')).toBe('private jwk');
    expect(() => unseal(crypto.randomBytes(32), sealed, 'key:abc')).toThrow(/not the one it was sealed with/);
    expect(() => unseal(key, sealed, 'key:other')).toThrow();
  });

  it('generates a development key once and keeps it in the data folder', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sme-passport-key-'));
    try {
      const first = resolveMasterKey(undefined, dir);
      expect(first).toHaveLength(32);
      expect(resolveMasterKey(undefined, dir).equals(first)).toBe(true);
      expect(fs.statSync(path.join(dir, 'master.key')).mode & 0o777).toBe(0o600);
      expect(resolveMasterKey(key, dir).equals(key)).toBe(true);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
