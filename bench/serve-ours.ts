// Child process: our server on PostgreSQL (the database named in BENCH_OURS_DATABASE_URL)
// or, without it, on embedded PGlite in BENCH_OURS_DATA_DIR (both the parent's to create
// and remove), with the bench's clients and people registered through the real modules.
// First, the memory settings the server's own entry point makes (src/main.ts), then
// the statement counter, before anything opens a database.
import '../src/memory-settings.ts';
import { statementCounts } from './statements.ts';
import { loadConfig } from '../src/config.ts';
import { startServer } from '../src/server.ts';
import { createClient, findClientMetadata } from '../src/windows/clients.ts';
import { listWindows } from '../src/windows/windows.ts';
import { createAccount, findAccountByIdOrUsername } from '../src/accounts/accounts.ts';
import { readSpec, serveUntilStopped } from './common.ts';

const spec = readSpec();

const config = loadConfig({
  NODE_ENV: 'test',
  PORT: '0',
  // Unset: the embedded database in DATA_DIR.
  DATABASE_URL: process.env.BENCH_OURS_DATABASE_URL,
  DATABASE_PREPARED_STATEMENTS: process.env.BENCH_OURS_PREPARED_STATEMENTS,
  DATA_DIR: process.env.BENCH_OURS_DATA_DIR,
  DEMO: 'false',
  MASTER_KEY: process.env.BENCH_MASTER_KEY,
  // All load comes from one address: the per-IP limit stays on (its query is part of the
  // cost) but must not refuse the benchmark itself.
  SIGN_IN_RATE_LIMIT: '100000000/60',
  // One log line per request would flood the bench's output (it echoes what the server prints).
  LOG_LEVEL: process.env.LOG_LEVEL ?? 'warn',
  // off only for the run that measures what the trail costs a sign-in.
  AUDIT_TRAIL: process.env.BENCH_OURS_AUDIT_TRAIL,
});
const running = await startServer(config);
const { db } = running.database;

const [window] = await listWindows(db);
if (!window) throw new Error('the window registry is empty');
const { service, a, b } = spec.clients;
// A second start on the same database (the registry at scale) finds them registered.
if (!(await findClientMetadata(db, service.id))) {
  await createClient(db, { windowId: window.id, name: 'bench service', redirectUris: [], grantTypes: ['client_credentials'], authMethod: 'client_secret_basic' }, { clientId: service.id, secret: service.secret });
}
for (const [name, c] of [['bench A', a], ['bench B', b]] as const) {
  if (await findClientMetadata(db, c.id)) continue;
  await createClient(db, { windowId: window.id, name, redirectUris: [spec.redirectUri], grantTypes: ['authorization_code', 'refresh_token'], authMethod: 'client_secret_basic' }, { clientId: c.id, secret: c.secret });
}
for (const { username, password } of spec.people) {
  if (!(await findAccountByIdOrUsername(db, username))) await createAccount(db, { username, displayName: username, password }, config.security.passwords);
}

// The parent asks "statements" before and after each measured stretch.
serveUntilStopped({ url: running.url, clients: spec.clients }, () => running.close(), (question) => (question === 'statements' ? statementCounts() : null));
