import os from 'node:os';
import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../src/config.ts';
import { PASSWORD_POLICIES } from '../../src/accounts/password-policy.ts';

const key = Buffer.alloc(32, 7).toString('base64');

describe('configuration from the environment', () => {
  it('has working defaults for development', () => {
    const c = loadConfig({});
    expect(c).toMatchObject({ production: false, port: 3000, host: '127.0.0.1', issuer: undefined, databaseUrl: undefined, trustProxy: false, demo: true });
    expect(c.dataDir).toMatch(/\/data$/);
  });

  it('names every bad variable and says why', () => {
    const attempt = () => loadConfig({ PORT: '70000', TRUST_PROXY: 'maybe', DATABASE_URL: 'mysql://x', ISSUER: 'ftp://x', MASTER_KEY: 'short' });
    expect(attempt).toThrow(ConfigError);
    try {
      attempt();
    } catch (err) {
      const message = (err as Error).message;
      for (const name of ['PORT', 'TRUST_PROXY', 'DATABASE_URL', 'ISSUER', 'MASTER_KEY']) expect(message).toContain(`${name}:`);
    }
  });

  it('listens for changes on DATABASE_LISTEN_URL, else on DATABASE_URL', () => {
    const url = 'postgres://passport@db.example.cn/passport';
    expect(loadConfig({ DATABASE_URL: url }).databaseListenUrl).toBeUndefined();
    expect(loadConfig({ DATABASE_URL: 'postgres://passport@pgbouncer:6432/passport', DATABASE_LISTEN_URL: url }).databaseListenUrl).toBe(url);
    expect(() => loadConfig({ DATABASE_URL: url, DATABASE_LISTEN_URL: 'mysql://x' })).toThrow(/DATABASE_LISTEN_URL: must be a postgres/);
    expect(() => loadConfig({ DATABASE_LISTEN_URL: url })).toThrow(/DATABASE_LISTEN_URL: needs DATABASE_URL/);
  });

  it('reads the sign-in protection settings', () => {
    expect(loadConfig({ SIGN_IN_RATE_LIMIT: '10/60', LOCKOUT_THRESHOLD: '3', SESSION_IDLE_TIMEOUT: '600' }).security).toMatchObject({
      lockout: { threshold: 3, seconds: 900 },
      signInRateLimit: { limit: 10, windowSeconds: 60 },
      session: { idleSeconds: 600, maxAgeSeconds: 43200 },
      passwords: PASSWORD_POLICIES.asvs,
    });
    expect(loadConfig({ PASSWORD_POLICY: 'mlps' }).security.passwords).toBe(PASSWORD_POLICIES.mlps);
    expect(loadConfig({ NODE_ENV: 'production', MASTER_KEY: key, ISSUER: 'https://p.example.cn' }).security.passwords).toBe(PASSWORD_POLICIES.mlps);
    expect(() => loadConfig({ PASSWORD_POLICY: 'strict' })).toThrow(/PASSWORD_POLICY: must be mlps or asvs/);
    expect(() => loadConfig({ SMTP_URL: 'http://mail.example.cn' })).toThrow(/SMTP_URL: must be an smtp/);
    expect(() => loadConfig({ SMS_WEBHOOK_URL: 'not a url' })).toThrow(/SMS_WEBHOOK_URL: must be an http/);
    expect(loadConfig({}).messages.outbox).toBe(true);
    expect(loadConfig({ NODE_ENV: 'production', MASTER_KEY: key, ISSUER: 'https://p.example.cn' }).messages.outbox).toBe(false);
    expect(() => loadConfig({ SIGN_IN_RATE_LIMIT: 'ten per minute' })).toThrow(/SIGN_IN_RATE_LIMIT: must be REQUESTS\/SECONDS/);
    expect(() => loadConfig({ SIGN_IN_RATE_LIMIT: '0/60' })).toThrow(/SIGN_IN_RATE_LIMIT: must have at least 1 request/);
    expect(() => loadConfig({ LOCKOUT_THRESHOLD: '0' })).toThrow(/LOCKOUT_THRESHOLD: must be at least 1/);
    expect(() => loadConfig({ SESSION_MAX_AGE: '-5' })).toThrow(/SESSION_MAX_AGE: must be positive/);
  });

  it('reads the limits on failed client authentications and on password hashing, with clear errors', () => {
    const c = loadConfig({});
    expect(c.security.clientAuth).toEqual({ perIp: { limit: 20, windowSeconds: 300 }, perClient: { limit: 100, windowSeconds: 300 } });
    expect(c.passwordHashing).toEqual({ concurrency: os.availableParallelism(), queue: 64 });
    expect(loadConfig({ CLIENT_AUTH_FAILURES_PER_IP: '5/60', CLIENT_AUTH_FAILURES_PER_CLIENT: '50/600', PASSWORD_HASH_CONCURRENCY: '3', PASSWORD_HASH_QUEUE: '0' })).toMatchObject({
      security: { clientAuth: { perIp: { limit: 5, windowSeconds: 60 }, perClient: { limit: 50, windowSeconds: 600 } } },
      passwordHashing: { concurrency: 3, queue: 0 },
    });
    expect(() => loadConfig({ CLIENT_AUTH_FAILURES_PER_IP: 'lots' })).toThrow(/CLIENT_AUTH_FAILURES_PER_IP: must be REQUESTS\/SECONDS/);
    expect(() => loadConfig({ CLIENT_AUTH_FAILURES_PER_CLIENT: '0/300' })).toThrow(/CLIENT_AUTH_FAILURES_PER_CLIENT: must have at least 1 request/);
    expect(() => loadConfig({ PASSWORD_HASH_CONCURRENCY: '0' })).toThrow(/PASSWORD_HASH_CONCURRENCY: must be at least 1/);
    expect(() => loadConfig({ PASSWORD_HASH_QUEUE: '-1' })).toThrow(/PASSWORD_HASH_QUEUE: must be 0 or more/);
    expect(() => loadConfig({ PASSWORD_HASH_QUEUE: 'many' })).toThrow(/PASSWORD_HASH_QUEUE: must be a number/);
  });

  it('refuses to start in production without a master key, an issuer, or with an http issuer', () => {
    expect(() => loadConfig({ NODE_ENV: 'production', ISSUER: 'https://passport.example.gov.cn' })).toThrow(/MASTER_KEY: required/);
    expect(() => loadConfig({ NODE_ENV: 'production', MASTER_KEY: key })).toThrow(/ISSUER: required/);
    expect(() => loadConfig({ NODE_ENV: 'production', MASTER_KEY: key, ISSUER: 'http://passport.example.gov.cn' })).toThrow(/ISSUER: must use https/);
    expect(() => loadConfig({ NODE_ENV: 'production', MASTER_KEY: key, ISSUER: 'https://p.example.cn', DEMO: 'on' })).toThrow(/DEMO/);
    expect(loadConfig({ NODE_ENV: 'production', MASTER_KEY: key, ISSUER: 'http://localhost:3000' }).issuer).toBe('http://localhost:3000');
    expect(loadConfig({ NODE_ENV: 'production', MASTER_KEY: key, ISSUER: 'https://p.example.cn/' })).toMatchObject({ issuer: 'https://p.example.cn', demo: false, host: '0.0.0.0' });
  });

  it('lets the audit trail be switched off only outside production, to measure its cost', () => {
    expect(loadConfig({}).auditTrail).toBe(true);
    expect(loadConfig({ AUDIT_TRAIL: 'off' }).auditTrail).toBe(false);
    expect(loadConfig({ NODE_ENV: 'test', AUDIT_TRAIL: 'on' }).auditTrail).toBe(true);
    expect(() => loadConfig({ AUDIT_TRAIL: 'false' })).toThrow(/AUDIT_TRAIL: must be on or off/);
    const production = { NODE_ENV: 'production', MASTER_KEY: key, ISSUER: 'https://p.example.cn' };
    expect(loadConfig(production).auditTrail).toBe(true);
    expect(loadConfig({ ...production, AUDIT_TRAIL: 'on' }).auditTrail).toBe(true);
    expect(() => loadConfig({ ...production, AUDIT_TRAIL: 'off' })).toThrow(ConfigError);
    expect(() => loadConfig({ ...production, AUDIT_TRAIL: 'off' })).toThrow(/AUDIT_TRAIL: cannot be off when NODE_ENV=production: the audit trail is required by MLPS/);
  });

  it('reads the back-channel logout retries: first delay, longest delay, give-up age', () => {
    expect(loadConfig({}).logoutDelivery).toEqual({ firstRetrySeconds: 10, maxRetrySeconds: 3600, giveUpSeconds: 86400 });
    expect(loadConfig({ LOGOUT_RETRY_FIRST: '1', LOGOUT_RETRY_MAX: '2', LOGOUT_GIVE_UP: '5' }).logoutDelivery).toEqual({ firstRetrySeconds: 1, maxRetrySeconds: 2, giveUpSeconds: 5 });
    expect(() => loadConfig({ LOGOUT_RETRY_FIRST: '0' })).toThrow(/LOGOUT_RETRY_FIRST: must be positive/);
    expect(() => loadConfig({ LOGOUT_RETRY_MAX: 'hourly' })).toThrow(/LOGOUT_RETRY_MAX: must be a number of seconds/);
    expect(() => loadConfig({ LOGOUT_GIVE_UP: '1.5' })).toThrow(/LOGOUT_GIVE_UP: must be a whole number/);
    expect(() => loadConfig({ LOGOUT_RETRY_FIRST: '60', LOGOUT_RETRY_MAX: '30' })).toThrow(/LOGOUT_RETRY_MAX: must be at least LOGOUT_RETRY_FIRST \(60\)/);
    expect(() => loadConfig({ LOGOUT_RETRY_FIRST: '60', LOGOUT_GIVE_UP: '30' })).toThrow(/LOGOUT_GIVE_UP: must be at least LOGOUT_RETRY_FIRST \(60\)/);
  });
});
