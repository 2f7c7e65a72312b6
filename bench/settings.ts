// The bench's settings, from the environment, checked once: a wrong value stops the run
// before anything starts, with the variable named.
import { z } from 'zod';

export const SCENARIOS = ['client_credentials', 'sso_hop', 'sign_in'] as const;
export type ScenarioName = (typeof SCENARIOS)[number];

const whole = (min: number) => z.coerce.number({ error: 'must be a number' }).int('must be a whole number').min(min, `must be at least ${min}`);
const seconds = (min: number) => z.coerce.number({ error: 'must be a number of seconds' }).min(min, `must be at least ${min}`).max(3600, 'must be at most 3600');

const schema = z.object({
  BENCH_DATABASE: z
    .string()
    .regex(/^[a-z_][a-z0-9_]{0,62}$/, 'must be a plain PostgreSQL name: lower-case letters, digits and _, at most 63')
    .optional(),
  DATABASE_URL: z.url({ protocol: /^postgres(ql)?$/, error: 'must be a postgres:// or postgresql:// URL' }).default('postgres://postgres@127.0.0.1:5432/postgres'),
  BENCH_ROUNDS: whole(1).max(100, 'must be at most 100').default(5),
  BENCH_ROUND_SECONDS: seconds(0.5).default(3),
  BENCH_WARMUP_SECONDS: seconds(0).default(2),
  BENCH_CONNECTIONS: whole(1).max(256, 'must be at most 256').default(16),
  BENCH_SCENARIOS: z
    .string()
    .transform((v) => v.split(',').map((s) => s.trim()).filter(Boolean))
    .pipe(z.array(z.enum(SCENARIOS, { error: `each must be one of ${SCENARIOS.join(', ')}` })).min(1, 'must name at least one scenario'))
    .default([...SCENARIOS]),
  BENCH_MIXED_SECONDS: seconds(0).default(0),
  BENCH_SCALE: z.enum(['0', '1'], { error: 'must be 0 (off) or 1 (registry and audit trail at scale)' }).default('0').transform((v) => v === '1'),
  BENCH_PREPARED_STATEMENTS: z.enum(['true', 'false'], { error: 'must be true or false' }).default('true').transform((v) => v === 'true'),
  BENCH_REGISTRY_ROWS: whole(0).default(1_000_000),
  BENCH_AUDIT_ROWS: whole(0).default(1_000_000),
});

export type Settings = {
  // undefined: a unique name is made up for the run.
  databaseName: string | undefined;
  // The PostgreSQL server the bench database is created on (its maintenance database).
  serverUrl: string;
  rounds: number;
  roundSeconds: number;
  warmupSeconds: number;
  connections: number;
  scenarios: ScenarioName[];
  mixedSeconds: number;
  // Ours on PostgreSQL with DATABASE_PREPARED_STATEMENTS as a pooler such as PgBouncer 1.18 needs it.
  preparedStatements: boolean;
  scale: { registryRows: number; auditRows: number } | undefined;
};

export class SettingsError extends Error {}

const KNOWN = new Set(Object.keys(schema.shape));

export function readSettings(env: Record<string, string | undefined>): Settings {
  // An old or misspelt BENCH_ variable would otherwise be ignored without a word.
  const unknown = Object.keys(env).filter((name) => name.startsWith('BENCH_') && !KNOWN.has(name));
  const parsed = schema.safeParse(Object.fromEntries(Object.entries(env).filter(([name, value]) => KNOWN.has(name) && value !== '')));
  const problems = [
    ...unknown.map((name) => `${name}: unknown; the bench reads ${[...KNOWN].filter((n) => n.startsWith('BENCH_')).join(', ')}`),
    ...(parsed.success ? [] : parsed.error.issues.map((i) => `${String(i.path[0])}: ${i.message} (got ${JSON.stringify(env[String(i.path[0])])})`)),
  ];
  if (problems.length || !parsed.success) throw new SettingsError(`invalid bench settings:\n  ${problems.join('\n  ')}`);
  const e = parsed.data;
  const server = new URL(e.DATABASE_URL);
  server.pathname = '/postgres';
  return {
    databaseName: e.BENCH_DATABASE,
    serverUrl: server.href,
    rounds: e.BENCH_ROUNDS,
    roundSeconds: e.BENCH_ROUND_SECONDS,
    warmupSeconds: e.BENCH_WARMUP_SECONDS,
    connections: e.BENCH_CONNECTIONS,
    scenarios: e.BENCH_SCENARIOS,
    mixedSeconds: e.BENCH_MIXED_SECONDS,
    preparedStatements: e.BENCH_PREPARED_STATEMENTS,
    scale: e.BENCH_SCALE ? { registryRows: e.BENCH_REGISTRY_ROWS, auditRows: e.BENCH_AUDIT_ROWS } : undefined,
  };
}
