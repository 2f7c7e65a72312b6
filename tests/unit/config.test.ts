import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
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

  it('listens for changes on DATABASE_DIRECT_URL, else on DATABASE_URL', () => {
    const url = 'postgres://passport@db.example.cn/passport';
    expect(loadConfig({ DATABASE_URL: url }).databaseDirectUrl).toBeUndefined();
    expect(loadConfig({ DATABASE_URL: 'postgres://passport@pgbouncer:6432/passport', DATABASE_DIRECT_URL: url }).databaseDirectUrl).toBe(url);
    expect(() => loadConfig({ DATABASE_URL: url, DATABASE_DIRECT_URL: 'mysql://x' })).toThrow(/DATABASE_DIRECT_URL: must be a postgres/);
    expect(() => loadConfig({ DATABASE_DIRECT_URL: url })).toThrow(/DATABASE_DIRECT_URL: needs DATABASE_URL/);
  });

  it('sends named prepared statements unless DATABASE_PREPARED_STATEMENTS=false', () => {
    const url = 'postgres://passport@pgbouncer:6432/passport';
    expect(loadConfig({ DATABASE_URL: url }).databasePreparedStatements).toBe(true);
    expect(loadConfig({ DATABASE_URL: url, DATABASE_PREPARED_STATEMENTS: 'false' }).databasePreparedStatements).toBe(false);
    expect(() => loadConfig({ DATABASE_URL: url, DATABASE_PREPARED_STATEMENTS: 'unnamed' })).toThrow(/DATABASE_PREPARED_STATEMENTS: must be one of true\/false/);
    expect(() => loadConfig({ DATABASE_PREPARED_STATEMENTS: 'false' })).toThrow(/DATABASE_PREPARED_STATEMENTS: needs DATABASE_URL/);
  });

  it('reads SHUTDOWN_GRACE_SECONDS: 25 unless set, whole seconds up to 600', () => {
    expect(loadConfig({}).shutdownGraceSeconds).toBe(25);
    expect(loadConfig({ SHUTDOWN_GRACE_SECONDS: '5' }).shutdownGraceSeconds).toBe(5);
    for (const bad of ['0', '-1', '1.5', 'soon', '601']) expect(() => loadConfig({ SHUTDOWN_GRACE_SECONDS: bad })).toThrow(/SHUTDOWN_GRACE_SECONDS: must/);
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

  it('brands the pages with the seed\'s naming unless the operator sets their own, with English falling back to the Chinese set', () => {
    const b = loadConfig({}).presentation.branding;
    expect(b).toEqual({
      platformName: { 'zh-CN': '河南省中小企业公共服务平台网络', en: 'Henan SME Public Service Platform Network' },
      organiser: { 'zh-CN': '河南省工业和信息化厅', en: 'Department of Industry and Information Technology of Henan Province' },
      icpBeian: undefined,
      publicSecurityBeian: undefined,
      servicePhone: undefined,
      logo: undefined,
    });
    const set = loadConfig({
      PLATFORM_NAME: ' 郑州市中小企业服务平台 ',
      ORGANISER: '郑州市工业和信息化局',
      ORGANISER_EN: 'Zhengzhou Bureau of Industry and Information Technology',
      ICP_BEIAN: '豫ICP备2021012345号-1',
      PUBLIC_SECURITY_BEIAN: '豫公网安备 41010502000001号',
      SERVICE_PHONE: '0371-6596 1234',
    }).presentation.branding;
    expect(set).toMatchObject({
      platformName: { 'zh-CN': '郑州市中小企业服务平台', en: '郑州市中小企业服务平台' },
      organiser: { 'zh-CN': '郑州市工业和信息化局', en: 'Zhengzhou Bureau of Industry and Information Technology' },
      icpBeian: { text: '豫ICP备2021012345号-1', href: 'https://beian.miit.gov.cn/' },
      publicSecurityBeian: { text: '豫公网安备 41010502000001号', href: 'https://beian.mps.gov.cn/#/query/webSearch?code=41010502000001' },
      servicePhone: { text: '0371-6596 1234', href: 'tel:037165961234' },
    });
    expect(loadConfig({ PLATFORM_NAME_EN: 'Zhengzhou SME Services' }).presentation.branding.platformName.en).toBe('Zhengzhou SME Services');
    expect(loadConfig({ ICP_BEIAN: '京ICP证030173号' }).presentation.branding.icpBeian?.text).toBe('京ICP证030173号');
    expect(loadConfig({ SERVICE_PHONE: '+86 371 12345' }).presentation.branding.servicePhone?.href).toBe('tel:+8637112345');
    // Names are text like any other, shown escaped: words that are special elsewhere stay words.
    for (const value of ['__proto__', 'constructor', '<script>alert(1)</script>']) expect(loadConfig({ ORGANISER: value }).presentation.branding.organiser['zh-CN']).toBe(value);
  });

  it('refuses branding that is not what it claims to be, naming the variable and why', () => {
    for (const name of ['PLATFORM_NAME', 'PLATFORM_NAME_EN', 'ORGANISER', 'ORGANISER_EN']) {
      expect(() => loadConfig({ [name]: '河南\u0000平台' })).toThrow(new RegExp(`${name}: must not contain control characters .*U\\+0000`));
      expect(() => loadConfig({ [name]: '河南\n平台' })).toThrow(new RegExp(`${name}: must not contain control characters .*U\\+000A`));
      expect(() => loadConfig({ [name]: 'ab\u202Ecd' })).toThrow(new RegExp(`${name}: must not contain text direction overrides`));
      expect(() => loadConfig({ [name]: '   ' })).toThrow(new RegExp(`${name}: must be at least 2 characters`));
      expect(() => loadConfig({ [name]: '平'.repeat(10_000) })).toThrow(new RegExp(`${name}: must be at most \\d+ characters`));
    }
    for (const bad of ['ICP备12345678号', '豫ICP备1234号', '豫ICP备12345678', '豫icp备12345678号', '豫ICP备12345678号\n', '<script>', '豫ICP备12345678号'.repeat(50)]) {
      expect(() => loadConfig({ ICP_BEIAN: bad })).toThrow(/ICP_BEIAN: must be an ICP filing number such as 豫ICP备12345678号-1/);
    }
    for (const bad of ['豫公网安备4101050200000号', '公网安备41010502000001号', '豫公网安备41010502000001', '豫公网安备41010502000001号\u0000', 'constructor']) {
      expect(() => loadConfig({ PUBLIC_SECURITY_BEIAN: bad })).toThrow(/PUBLIC_SECURITY_BEIAN: must be a public security filing number/);
    }
    for (const bad of ['12', '0371-1234567x', 'tel:12345', '0371\n1234', '1'.repeat(21), '__proto__', '-12345']) {
      expect(() => loadConfig({ SERVICE_PHONE: bad })).toThrow(/SERVICE_PHONE: must be a phone number/);
    }
  });

  it('takes SMS_SIGNATURE as carriers do: 2 to 12 characters inside 【】', () => {
    expect(loadConfig({}).messages.smsSignature).toBe('【河南中小企业】');
    expect(loadConfig({ SMS_SIGNATURE: '【郑州窗口】' }).messages.smsSignature).toBe('【郑州窗口】');
    expect(loadConfig({ SMS_SIGNATURE: '【SME2026】' }).messages.smsSignature).toBe('【SME2026】');
    for (const bad of ['河南中小企业', '[河南中小企业]', '【河】', '【一二三四五六七八九十一二三】', '【河南 中小企业】', '【河南\u0000企业】', '【<script>】', '【河南】【企业】', '__proto__']) {
      expect(() => loadConfig({ SMS_SIGNATURE: bad })).toThrow(/SMS_SIGNATURE: must be 2 to 12 Chinese characters, letters or digits inside 【】/);
    }
  });

  describe('LOGO_FILE', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sme-passport-logo-'));
    afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));
    const file = (name: string, body: Buffer | string) => {
      const at = path.join(dir, name);
      fs.writeFileSync(at, body);
      return at;
    };
    const png = Buffer.concat([Buffer.from('89504e470d0a1a0a0000000d49484452', 'hex'), Buffer.alloc(64)]);

    it('takes a PNG, a JPEG or an SVG by its content, served under a name that carries its digest', () => {
      const logo = loadConfig({ LOGO_FILE: file('logo.bin', png) }).presentation.branding.logo!;
      expect(logo.type).toBe('image/png');
      expect(logo.href).toMatch(/^\/assets\/logo-[0-9a-f]{16}\.png$/);
      expect(logo.body.equals(png)).toBe(true);
      expect(loadConfig({ LOGO_FILE: file('logo.jpg', Buffer.from('ffd8ffe000104a464946', 'hex')) }).presentation.branding.logo).toMatchObject({ type: 'image/jpeg', href: expect.stringMatching(/\.jpg$/) });
      const svg = '\uFEFF<?xml version="1.0"?>\n<!-- 标识 -->\n<!DOCTYPE svg>\n<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 1 1"/>';
      expect(loadConfig({ LOGO_FILE: file('logo.svg', svg) }).presentation.branding.logo).toMatchObject({ type: 'image/svg+xml', href: expect.stringMatching(/\.svg$/) });
      const other = loadConfig({ LOGO_FILE: file('other.png', Buffer.concat([png, Buffer.from([1])])) }).presentation.branding.logo!;
      expect(other.href).not.toBe(logo.href);
    });

    it('refuses a file that is missing, a directory, too big or not an image, naming the file', () => {
      const missing = path.join(dir, 'missing.png');
      expect(() => loadConfig({ LOGO_FILE: missing })).toThrow(`LOGO_FILE: no such file: ${missing}`);
      expect(() => loadConfig({ LOGO_FILE: dir })).toThrow(`LOGO_FILE: must be a file, and ${dir} is a directory`);
      const big = file('big.png', Buffer.concat([png, Buffer.alloc(200 * 1024)]));
      expect(() => loadConfig({ LOGO_FILE: big })).toThrow(`LOGO_FILE: must be at most 200 KB, and ${big} is 201 KB`);
      expect(loadConfig({ LOGO_FILE: file('edge.png', Buffer.concat([png, Buffer.alloc(200 * 1024 - png.length)])) }).presentation.branding.logo?.type).toBe('image/png');
      for (const [name, body] of [
        ['empty.png', ''],
        ['text.png', 'just some text'],
        ['page.svg', '<html><svg></svg></html>'],
        ['gif.png', 'GIF89a\u0001\u0000'],
        ['broken.svg', Buffer.concat([Buffer.from('<svg>'), Buffer.from([0xff, 0xfe])])],
      ] as const) {
        const at = file(name, body);
        expect(() => loadConfig({ LOGO_FILE: at })).toThrow(`LOGO_FILE: must be a PNG, JPEG or SVG image, and ${at} is none of these`);
      }
      expect(() => loadConfig({ LOGO_FILE: `${dir}/logo\u0000.png` })).toThrow(/LOGO_FILE: must not contain control characters/);
      expect(() => loadConfig({ LOGO_FILE: 'a'.repeat(2000) })).toThrow(/LOGO_FILE: must be at most 1024 characters/);
    });
  });
});
