import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../src/config.ts';

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

  it('refuses to start in production without a master key, an issuer, or with an http issuer', () => {
    expect(() => loadConfig({ NODE_ENV: 'production', ISSUER: 'https://passport.example.gov.cn' })).toThrow(/MASTER_KEY: required/);
    expect(() => loadConfig({ NODE_ENV: 'production', MASTER_KEY: key })).toThrow(/ISSUER: required/);
    expect(() => loadConfig({ NODE_ENV: 'production', MASTER_KEY: key, ISSUER: 'http://passport.example.gov.cn' })).toThrow(/ISSUER: must use https/);
    expect(() => loadConfig({ NODE_ENV: 'production', MASTER_KEY: key, ISSUER: 'https://p.example.cn', DEMO: 'on' })).toThrow(/DEMO/);
    expect(loadConfig({ NODE_ENV: 'production', MASTER_KEY: key, ISSUER: 'http://localhost:3000' }).issuer).toBe('http://localhost:3000');
    expect(loadConfig({ NODE_ENV: 'production', MASTER_KEY: key, ISSUER: 'https://p.example.cn/' })).toMatchObject({ issuer: 'https://p.example.cn', demo: false, host: '0.0.0.0' });
  });
});
