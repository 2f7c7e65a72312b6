import path from 'node:path';
import { z } from 'zod';
import { PASSWORD_POLICIES, type PasswordPolicy } from './accounts/password-policy.ts';
import type { SenderSettings } from './messages/senders.ts';
import { LOG_LEVELS, type LogLevel } from './http/logging.ts';
import { defaultHashingConcurrency, type HashingLimits } from './accounts/passwords.ts';
import type { DeliverySettings } from './oidc/logout-deliveries.ts';
import { DEFAULT_BRANDING, icpBeianLink, isTimeZone, publicSecurityBeianLink, servicePhoneLink, type Branding, type Presentation } from './http/presentation.ts';
import { readLogo } from './http/logo.ts';
import { text } from './validation/text.ts';
import { englishOfIssue } from './errors.ts';

// Every setting the server reads, validated once at start. A bad value stops the
// process with a message that names the variable; nothing else reads process.env.

const bool = z
  .enum(['1', '0', 'true', 'false', 'yes', 'no', 'on', 'off'], {
    error: 'must be one of true/false, 1/0, yes/no, on/off',
  })
  .transform((v) => ['1', 'true', 'yes', 'on'].includes(v));

const port = z.coerce
  .number({ error: 'must be a number' })
  .int('must be a whole number')
  .min(0, 'must be between 0 and 65535')
  .max(65535, 'must be between 0 and 65535');

const seconds = z.coerce.number({ error: 'must be a number of seconds' }).int('must be a whole number').positive('must be positive');

// "N/S": at most N requests per S seconds from one IP address.
const rate = z
  .string()
  .regex(/^\d+\/\d+$/, 'must be REQUESTS/SECONDS, such as 30/300')
  .transform((v) => {
    const [limit, windowSeconds] = v.split('/').map(Number) as [number, number];
    return { limit, windowSeconds };
  })
  .refine((r) => r.limit >= 1 && r.windowSeconds >= 1, 'must have at least 1 request in at least 1 second');

// A name shown in every page's header or footer.
const displayName = (max: number) => text({ max }).min(2, 'must be at least 2 characters');

// The filings' own forms, so a typo is caught at start rather than shown on every page.
const PROVINCES = '京津冀晋蒙辽吉黑沪苏浙皖闽赣鲁豫鄂湘粤桂琼渝川贵云藏陕甘青宁新';

const envSchema = z.object({
  NODE_ENV: z.enum(['development', 'production', 'test'], { error: 'must be development, production or test' }).default('development'),
  PORT: port.default(3000),
  HOST: z.string().min(1, 'must not be empty').optional(),
  ISSUER: z.url({ protocol: /^https?$/, error: 'must be an absolute http(s) URL such as https://passport.example.gov.cn' }).optional(),
  DATABASE_URL: z.url({ protocol: /^postgres(ql)?$/, error: 'must be a postgres:// or postgresql:// URL' }).optional(),
  // The database itself, not a pooler in transaction mode (PgBouncer), where a session
  // does not hold: for what needs one (LISTEN for change notifications).
  DATABASE_DIRECT_URL: z.url({ protocol: /^postgres(ql)?$/, error: 'must be a postgres:// or postgresql:// URL that reaches PostgreSQL directly' }).optional(),
  // false: the provider's own statements go unnamed, for a pooler in transaction mode
  // that does not keep named prepared statements (PgBouncer before 1.21).
  DATABASE_PREPARED_STATEMENTS: bool.default(true),
  DATA_DIR: z.string().min(1, 'must not be empty').default('data'),
  TRUST_PROXY: bool.default(false),
  MASTER_KEY: z
    .string()
    .refine((v) => Buffer.from(v, 'base64').length === 32, 'must be 32 random bytes in base64 (openssl rand -base64 32)')
    .optional(),
  DEMO: bool.optional(),
  PURGE_INTERVAL: seconds.default(600),
  SHUTDOWN_GRACE_SECONDS: seconds.max(600, 'must be at most 600').default(25),
  DATABASE_POOL_MAX: z.coerce.number({ error: 'must be a number' }).int('must be a whole number').min(1, 'must be at least 1').max(200, 'must be at most 200').default(10),
  LOCKOUT_THRESHOLD: z.coerce.number({ error: 'must be a number' }).int('must be a whole number').min(1, 'must be at least 1').max(100, 'must be at most 100').default(5),
  LOCKOUT_SECONDS: seconds.default(900),
  SIGN_IN_RATE_LIMIT: rate.prefault('30/300'),
  PASSWORD_HASH_CONCURRENCY: z.coerce.number({ error: 'must be a number' }).int('must be a whole number').min(1, 'must be at least 1').max(256, 'must be at most 256').optional(),
  PASSWORD_HASH_QUEUE: z.coerce.number({ error: 'must be a number' }).int('must be a whole number').min(0, 'must be 0 or more').max(10000, 'must be at most 10000').default(64),
  SESSION_IDLE_TIMEOUT: seconds.default(1800),
  SESSION_MAX_AGE: seconds.default(12 * 3600),
  PASSWORD_POLICY: z.enum(['mlps', 'asvs'], { error: 'must be mlps or asvs' }).optional(),
  KEYS_REFRESH_SECONDS: seconds.default(30),
  KEY_ROTATION_DELAY: z.coerce.number({ error: 'must be a number of seconds' }).int('must be a whole number').min(0, 'must be 0 or more').default(3600),
  CODE_RATE_LIMIT: rate.prefault('10/3600'),
  // Failed client authentications (wrong client secrets) before the address, or the
  // client, is refused for the rest of the window. Successes are never counted.
  CLIENT_AUTH_FAILURES_PER_IP: rate.prefault('20/300'),
  CLIENT_AUTH_FAILURES_PER_CLIENT: rate.prefault('100/300'),
  REGISTER_RATE_LIMIT: rate.prefault('10/3600'),
  SMTP_URL: z.url({ protocol: /^smtps?$/, error: 'must be an smtp:// or smtps:// URL, e.g. smtps://user:password@mail.example.cn:465' }).optional(),
  SMTP_FROM: z.string().min(3, 'must be a sender address such as "统一身份认证 <no-reply@example.cn>"').default('sme-passport <no-reply@localhost>'),
  SMS_WEBHOOK_URL: z.url({ protocol: /^https?$/, error: 'must be an http(s) URL that accepts a JSON POST {"to", "text"}' }).optional(),
  SMS_WEBHOOK_TOKEN: z.string().min(1).optional(),
  LOG_LEVEL: z.enum(LOG_LEVELS, { error: `must be one of ${LOG_LEVELS.join(', ')}` }).default('info'),
  METRICS_TOKEN: z.string().min(32, 'must be at least 32 characters (openssl rand -base64 32)').optional(),
  // Back-channel logout retries: the first after this many seconds, doubling up to the
  // most, until the notification is this old (then abandoned).
  LOGOUT_RETRY_FIRST: seconds.default(10),
  LOGOUT_RETRY_MAX: seconds.default(3600),
  LOGOUT_GIVE_UP: seconds.default(24 * 3600),
  // off only to measure what the trail costs (npm run bench); refused in production.
  AUDIT_TRAIL: z.enum(['on', 'off'], { error: 'must be on or off' }).default('on'),
  TIME_ZONE: z.string().refine(isTimeZone, 'must be an IANA time zone such as Asia/Shanghai').default('Asia/Shanghai'),
  PLATFORM_NAME: displayName(60).optional(),
  PLATFORM_NAME_EN: displayName(120).optional(),
  ORGANISER: displayName(60).optional(),
  ORGANISER_EN: displayName(120).optional(),
  ICP_BEIAN: z.string().regex(new RegExp(`^[${PROVINCES}]ICP[备证]\\d{6,10}号(-\\d{1,4})?$`, 'u'), 'must be an ICP filing number such as 豫ICP备12345678号-1').optional(),
  PUBLIC_SECURITY_BEIAN: z.string().regex(new RegExp(`^[${PROVINCES}]公网安备 ?\\d{14}号$`, 'u'), 'must be a public security filing number such as 豫公网安备41010502000001号').optional(),
  SERVICE_PHONE: z.string().regex(/^\+?\d[\d -]{1,18}\d$/, 'must be a phone number of digits, spaces and hyphens (at most 20 in all), such as 0371-12345678').optional(),
  LOGO_FILE: text({ max: 1024 }).optional(),
  // Carriers accept a registered signature of 2 to 12 characters in 【】 (Chinese, letters, digits).
  SMS_SIGNATURE: z
    .string()
    .regex(/^【[\p{Script=Han}A-Za-z0-9]{2,12}】$/u, 'must be 2 to 12 Chinese characters, letters or digits inside 【】, such as 【河南中小企业】')
    .default('【河南中小企业】'),
});

export type Config = {
  production: boolean;
  // NODE_ENV=development (npm start): pages may show what only an integrator needs.
  development: boolean;
  port: number;
  host: string;
  // Unset: http://localhost:<the port actually bound>, known only once listening.
  issuer: string | undefined;
  databaseUrl: string | undefined;
  // PostgreSQL itself, past any pooler, for what needs a session; unset: databaseUrl.
  databaseDirectUrl: string | undefined;
  databasePreparedStatements: boolean;
  dataDir: string;
  trustProxy: boolean;
  masterKey: Buffer | undefined;
  demo: boolean;
  purgeIntervalSeconds: number;
  // How long a stopping node lets what is in flight finish before cutting it.
  shutdownGraceSeconds: number;
  // How often a node looks for a changed key set, and how long a rotated key is
  // published before it signs.
  keys: { refreshSeconds: number; rotationDelaySeconds: number };
  databasePoolMax: number;
  // argon2 hashes one node computes at once, and how many more may wait (19 MiB each in flight).
  passwordHashing: HashingLimits;
  security: SecuritySettings;
  messages: SenderSettings;
  logLevel: LogLevel;
  // Bearer token for /metrics; unset: /metrics is open outside production, absent in it.
  metricsToken: string | undefined;
  logoutDelivery: DeliverySettings;
  // false only when measuring the trail's cost (AUDIT_TRAIL=off, never in production).
  auditTrail: boolean;
  // How pages show times and the platform (src/http/presentation.ts).
  presentation: Presentation;
};

export type SecuritySettings = {
  lockout: { threshold: number; seconds: number };
  signInRateLimit: { limit: number; windowSeconds: number };
  codeRateLimit: { limit: number; windowSeconds: number };
  registerRateLimit: { limit: number; windowSeconds: number };
  clientAuth: { perIp: { limit: number; windowSeconds: number }; perClient: { limit: number; windowSeconds: number } };
  session: { idleSeconds: number; maxAgeSeconds: number };
  passwords: PasswordPolicy;
};

export class ConfigError extends Error {}

const isLoopbackHost = (hostname: string) =>
  hostname === 'localhost' || hostname === '[::1]' || /^127(\.\d{1,3}){3}$/.test(hostname);

export function loadConfig(env: Record<string, string | undefined> = process.env): Config {
  const present = Object.fromEntries(Object.entries(env).filter(([, v]) => v !== undefined && v !== ''));
  const parsed = envSchema.safeParse(present);
  if (!parsed.success) {
    const lines = parsed.error.issues.map((i) => `${i.path.join('.')}: ${englishOfIssue(i)}`);
    throw new ConfigError(`invalid configuration:\n  ${lines.join('\n  ')}`);
  }
  const e = parsed.data;
  const production = e.NODE_ENV === 'production';
  if (e.DATABASE_DIRECT_URL && !e.DATABASE_URL) throw new ConfigError('DATABASE_DIRECT_URL: needs DATABASE_URL (the embedded database has no connections)');
  if (present.DATABASE_PREPARED_STATEMENTS !== undefined && !e.DATABASE_URL) {
    throw new ConfigError('DATABASE_PREPARED_STATEMENTS: needs DATABASE_URL (the embedded database has no connections)');
  }
  const issuer = e.ISSUER?.replace(/\/+$/, '');
  const issuerUrl = issuer ? new URL(issuer) : undefined;
  if (issuerUrl && (issuerUrl.search || issuerUrl.hash)) throw new ConfigError('ISSUER: must not have a query or fragment');
  if (e.LOGOUT_RETRY_MAX < e.LOGOUT_RETRY_FIRST) throw new ConfigError(`LOGOUT_RETRY_MAX: must be at least LOGOUT_RETRY_FIRST (${e.LOGOUT_RETRY_FIRST})`);
  if (e.LOGOUT_GIVE_UP < e.LOGOUT_RETRY_FIRST) throw new ConfigError(`LOGOUT_GIVE_UP: must be at least LOGOUT_RETRY_FIRST (${e.LOGOUT_RETRY_FIRST})`);
  const branding = brandingOf(e);
  if (production) {
    if (!e.MASTER_KEY) throw new ConfigError('MASTER_KEY: required when NODE_ENV=production (32 random bytes in base64: openssl rand -base64 32)');
    if (!issuerUrl) throw new ConfigError('ISSUER: required when NODE_ENV=production (the public https URL of this provider)');
    if (issuerUrl.protocol === 'http:' && !isLoopbackHost(issuerUrl.hostname)) {
      throw new ConfigError('ISSUER: must use https:// when NODE_ENV=production (http:// is allowed only for localhost)');
    }
    if (e.DEMO) throw new ConfigError('DEMO: the demo cannot run when NODE_ENV=production');
    if (e.AUDIT_TRAIL === 'off') {
      throw new ConfigError('AUDIT_TRAIL: cannot be off when NODE_ENV=production: the audit trail is required by MLPS (等保 security audit); off is only for measuring its cost');
    }
  }
  return {
    production,
    development: e.NODE_ENV === 'development',
    port: e.PORT,
    host: e.HOST ?? (production ? '0.0.0.0' : '127.0.0.1'),
    issuer,
    databaseUrl: e.DATABASE_URL,
    databaseDirectUrl: e.DATABASE_DIRECT_URL,
    databasePreparedStatements: e.DATABASE_PREPARED_STATEMENTS,
    dataDir: path.resolve(e.DATA_DIR),
    trustProxy: e.TRUST_PROXY,
    masterKey: e.MASTER_KEY ? Buffer.from(e.MASTER_KEY, 'base64') : undefined,
    demo: e.DEMO ?? !production,
    purgeIntervalSeconds: e.PURGE_INTERVAL,
    shutdownGraceSeconds: e.SHUTDOWN_GRACE_SECONDS,
    keys: { refreshSeconds: e.KEYS_REFRESH_SECONDS, rotationDelaySeconds: e.KEY_ROTATION_DELAY },
    databasePoolMax: e.DATABASE_POOL_MAX,
    passwordHashing: { concurrency: e.PASSWORD_HASH_CONCURRENCY ?? defaultHashingConcurrency(), queue: e.PASSWORD_HASH_QUEUE },
    security: {
      lockout: { threshold: e.LOCKOUT_THRESHOLD, seconds: e.LOCKOUT_SECONDS },
      signInRateLimit: e.SIGN_IN_RATE_LIMIT,
      codeRateLimit: e.CODE_RATE_LIMIT,
      registerRateLimit: e.REGISTER_RATE_LIMIT,
      clientAuth: { perIp: e.CLIENT_AUTH_FAILURES_PER_IP, perClient: e.CLIENT_AUTH_FAILURES_PER_CLIENT },
      session: { idleSeconds: e.SESSION_IDLE_TIMEOUT, maxAgeSeconds: e.SESSION_MAX_AGE },
      // MLPS is what a production deployment is assessed against.
      passwords: PASSWORD_POLICIES[e.PASSWORD_POLICY ?? (production ? 'mlps' : 'asvs')],
    },
    // Outside production, messages nobody can deliver land in the development outbox.
    messages: { smtpUrl: e.SMTP_URL, smtpFrom: e.SMTP_FROM, smsWebhookUrl: e.SMS_WEBHOOK_URL, smsWebhookToken: e.SMS_WEBHOOK_TOKEN, smsSignature: e.SMS_SIGNATURE, outbox: !production },
    logLevel: e.LOG_LEVEL,
    metricsToken: e.METRICS_TOKEN,
    auditTrail: e.AUDIT_TRAIL === 'on',
    presentation: { timeZone: e.TIME_ZONE, branding },
    logoutDelivery: { firstRetrySeconds: e.LOGOUT_RETRY_FIRST, maxRetrySeconds: e.LOGOUT_RETRY_MAX, giveUpSeconds: e.LOGOUT_GIVE_UP },
  };
}

// An English name not set falls back to the Chinese one the operator set, never to the
// default's English for a platform that has another name.
function brandingOf(e: z.infer<typeof envSchema>): Branding {
  const logo = e.LOGO_FILE === undefined ? undefined : readLogo(path.resolve(e.LOGO_FILE));
  if (typeof logo === 'string') throw new ConfigError(`LOGO_FILE: ${logo}`);
  const bilingual = (zh: string | undefined, en: string | undefined, fallback: Record<'zh-CN' | 'en', string>) => ({
    'zh-CN': zh ?? fallback['zh-CN'],
    en: en ?? zh ?? fallback.en,
  });
  return {
    platformName: bilingual(e.PLATFORM_NAME, e.PLATFORM_NAME_EN, DEFAULT_BRANDING.platformName),
    organiser: bilingual(e.ORGANISER, e.ORGANISER_EN, DEFAULT_BRANDING.organiser),
    icpBeian: e.ICP_BEIAN === undefined ? undefined : icpBeianLink(e.ICP_BEIAN),
    publicSecurityBeian: e.PUBLIC_SECURITY_BEIAN === undefined ? undefined : publicSecurityBeianLink(e.PUBLIC_SECURITY_BEIAN),
    servicePhone: e.SERVICE_PHONE === undefined ? undefined : servicePhoneLink(e.SERVICE_PHONE),
    logo,
  };
}
