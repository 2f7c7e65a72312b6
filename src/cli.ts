import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { SingleBar } from 'cli-progress';
import { stringify } from 'csv-stringify';
import { Command, CommanderError, Option } from 'commander';
import { z } from 'zod';
import { ConfigError, loadConfig } from './config.ts';
import { cliSocketPath, relayToServer, type CliOutcome } from './cli-relay.ts';
import { DatabaseInUseError, embeddedDatabaseOwner, openDatabase, type Db } from './db/connect.ts';
import { DatabaseUnavailable } from './db/connection-errors.ts';
import { migrate, pendingMigrations, UnknownMigrations, WAITING_TO_MIGRATE, type MigrationTarget } from './db/migrate.ts';
import { InputError, issuesOf, NotFoundError, parseInput } from './errors.ts';
import { createAccount, findAccountByIdOrUsername, setAccountStatus } from './accounts/accounts.ts';
import { endSessionsOf } from './oidc/sessions.ts';
import { ADMIN_ROLES, grantRole, revokeRole, rolesOf, type AdminRole } from './accounts/admin-roles.ts';
import { AdministratorsExist, BOOTSTRAP_DEFAULTS, bootstrapAdministrators, PROVINCE_ROLES, type BootstrapPerson, type ProvinceRole } from './accounts/bootstrap.ts';
import { standaloneProvider } from './oidc/standalone.ts';
import { listKeys, retireKey, rotateSigningKeys } from './oidc/keys.ts';
import { MasterKeyMismatch, openMasterKey } from './crypto/key-check.ts';
import { consoleLogger } from './http/errors.ts';
import { AUTH_METHODS, createClient, getClient, listClients, parseGrantTypes, type Client } from './windows/clients.ts';
import { createWindow, listWindows, requireWindow, WINDOW_KINDS } from './windows/windows.ts';
import { createApi, DEFAULT_TOKEN_TTL, deleteApi, listApis, MAX_TOKEN_TTL, MIN_TOKEN_TTL, updateApi, type Api } from './windows/apis.ts';
import { purgeExpired } from './purge.ts';
import { deliveryFigures } from './oidc/logout-deliveries.ts';
import { recordEvent, type AuditEvent } from './audit/trail.ts';
import { currentYear, windowFigures, YEARLY_TARGET, yearSchema } from './audit/figures.ts';
import { verifyTrail } from './audit/verify.ts';
import { auditDate, EXPORT_FORMATS, exportEvents, exportFilterSchema, type ExportFormat } from './audit/export.ts';
import { auditRetentionDays, checkPurgeDate, purgeTrail } from './audit/retention.ts';
import { createEnterprise, ENTERPRISE_STATUSES, ENTERPRISE_TYPES, requireEnterprise, searchEnterprises, setEnterpriseStatus, type Enterprise } from './enterprises/enterprises.ts';
import { addMember, ROLES } from './enterprises/memberships.ts';
import { importEnterprises, ImportStopped, type ImportSummary } from './enterprises/import.ts';
import { text } from './validation/text.ts';

// The administrator's command line. Exit codes scripts can rely on:
// 0 done, 1 refused (bad input, conflict, not found), 2 usage or configuration error,
// 3 unexpected failure.

const EXIT = { refused: 1, usage: 2, failure: 3 } as const;

class Refused extends Error {}
// A refusal already told on stdout (--json): exit 1 and print nothing more.
class ReportedRefusal extends Error {}
// An unexpected failure the command has explained itself (how far it got): exit 3.
class Failed extends Error {}

// What kind of unexpected failure, for the operator: a database's SQLSTATE or a system
// error code, else the error's class. Never its message: database errors carry the
// statement, and with it the values.
function failureKind(err: unknown): string {
  if (err instanceof DatabaseUnavailable) return `the database cannot be reached (${err.reason})`;
  const code = (err as { code?: unknown } | undefined)?.code;
  if (typeof code === 'string' && /^[0-9A-Z]{5}$/.test(code)) return `database error ${code}`;
  if (typeof code === 'string' && /^E[A-Z_]{2,30}$/.test(code)) return code;
  return err instanceof Error ? err.name : typeof err;
}

// What a command may touch of its caller: output, input, the working directory for
// relative paths, whether a person watches the terminal, the environment its settings
// are read from, and (relayed) the server's database.
export type Io = { stdout: (s: string) => void; stderr: (s: string) => void; readStdin: () => Promise<string>; cwd: string; interactive: boolean; env: Record<string, string | undefined>; db?: Db };

const processIo: Io = {
  cwd: process.cwd(),
  env: process.env,
  interactive: Boolean(process.stderr.isTTY),
  stdout: (s) => process.stdout.write(s),
  stderr: (s) => process.stderr.write(s),
  async readStdin() {
    if (process.stdin.isTTY) throw new Refused('--password-stdin: pipe the password on standard input, e.g. printf %s "$PW" | sme-passport ...');
    const chunks: Buffer[] = [];
    for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
    return Buffer.concat(chunks).toString('utf8');
  },
};

const VERSION = (JSON.parse(fs.readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }).version;

async function refuseStaleSchema(db: Db): Promise<void> {
  if ((await pendingMigrations(db)).length > 0) throw new Refused('the database schema is not up to date: run `sme-passport migrate` first');
}

// The database client's own warnings are about connections, which a command that
// fails reports itself, in one line.
const quietDatabaseClient = { error: () => {}, info: () => {} };

// Runs work on the database: the one handed in (the server running a forwarded
// command on its embedded database, which no other process migrates), or one this
// process opens and closes.
async function withDatabase<T>(io: Io, work: (database: MigrationTarget) => Promise<T>, options: { migrating?: boolean } = {}): Promise<T> {
  const database = io.db ? undefined : await openDatabase(loadConfig(io.env), quietDatabaseClient);
  const target = database ?? { db: io.db! };
  try {
    if (!options.migrating) await refuseStaleSchema(target.db);
    return await work(target);
  } finally {
    await database?.close();
  }
}

// The account an operator names by id or username, or a clear refusal.
async function requireAccount(db: Db, value: string) {
  const account = await findAccountByIdOrUsername(db, value);
  if (!account) throw new NotFoundError('account', 'account_not_found_cli', { value });
  return account;
}

// A file the command writes, flushed to disk when closed; a clear refusal if it cannot
// be made ('wx': never over an existing file).
function openForWriting(file: string, flag: string, mode: 'w' | 'wx') {
  let fd: number;
  try {
    fd = fs.openSync(file, mode, 0o600);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new Refused(`${flag}: cannot write ${file}${code === 'EEXIST' ? ': it exists already (choose a new name)' : code ? ` (${code})` : ''}`);
  }
  const stream = fs.createWriteStream('', { fd, autoClose: false });
  const close = async () => {
    await new Promise<void>((resolve, reject) => stream.end((err?: Error | null) => (err ? reject(err) : resolve())));
    fs.fsyncSync(fd);
    fs.closeSync(fd);
  };
  return { stream, close };
}

const DAYS = z.coerce.number({ error: 'is not a number' }).int('is not a whole number').min(1, 'must be at least 1').max(30, 'must be at most 30');

const collect = (value: string, previous: string[] = []) => [...previous, value];

const windowId = (value: string) => {
  if (!/^\d+$/.test(value)) throw new Refused(`--window: "${value}" is not a window id (a number; see sme-passport window list)`);
  return Number(value);
};

// Field names in domain errors are the schema's; the operator typed flags.
const FLAG_OF: Record<string, string> = {
  windowId: '--window',
  redirectUris: '--redirect-uri',
  postLogoutRedirectUris: '--post-logout-redirect-uri',
  backchannelLogoutUri: '--backchannel-logout-uri',
  frontchannelLogoutUri: '--frontchannel-logout-uri',
  jwksUri: '--jwks-uri',
  authMethod: '--auth-method',
  grantTypes: '--grant-types',
  displayName: '--name',
  window: '--window',
  password: '--password-stdin',
  enterpriseId: '--enterprise',
  accountId: '--account',
  scopes: '--scope',
  accessTokenTtlSeconds: '--token-ttl',
  otherWindows: '--allow-other-windows',
  apiId: '--id',
};
// Every flag and argument of every command is text like any other input, checked
// once here before any command runs; the commands' own schemas then check what each
// value means.
const argumentText = text({ max: 4096 });
function refuseBadText(command: Command): void {
  const check = (name: string, value: unknown) => {
    for (const v of [value].flat()) {
      const parsed = typeof v === 'string' ? argumentText.safeParse(v) : undefined;
      if (parsed && !parsed.success) throw new Refused(`${name}: ${issuesOf(parsed.error)[0]!.message}`);
    }
  };
  const values = command.opts();
  for (const option of command.options) check(option.long ?? option.flags, values[option.attributeName()]);
  command.registeredArguments.forEach((argument, i) => check(`<${argument.name()}>`, command.processedArgs[i]));
}

const flagFor = (field: string) => FLAG_OF[field.split('.')[0]!] ?? `--${field.split('.')[0]!.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`;

export function buildCli(io: Io = processIo): Command {
  const print = (json: boolean | undefined, data: object, human: string) => io.stdout(json ? `${JSON.stringify(data)}\n` : `${human}\n`);
  const cliActor = () => ({ type: 'system' as const, id: `cli:${os.userInfo().username}` });
  const onDb = <T>(work: (db: Db) => Promise<T>) => withDatabase(io, ({ db }) => work(db));
  // A change from the command line goes on record in the transaction that makes it, under
  // the same event names as the admin API's operations.
  const changeOnDb = <T>(event: string, work: (db: Db) => Promise<{ value: T; change: Pick<AuditEvent, 'target' | 'enterpriseId' | 'windowId' | 'before' | 'after'> }>) =>
    onDb((db) =>
      db.transaction(async (trx) => {
        const { value, change } = await work(trx);
        await recordEvent(trx, { actor: cliActor(), event, outcome: 'success', ...change });
        return value;
      }),
    );

  const program = new Command('sme-passport')
    .description('Administrator command line of the sme-passport identity provider')
    .version(VERSION, '-V, --version', 'print the version')
    .exitOverride()
    .configureOutput({ writeOut: io.stdout, writeErr: io.stderr })
    .hook('preAction', (_program, command) => refuseBadText(command));

  program
    .command('migrate')
    .description('apply pending database migrations')
    .option('--json', 'print JSON')
    .action(async (o: { json?: boolean }) => {
      const applied = await withDatabase(io, (database) => migrate(database, { onWait: () => io.stderr(`${WAITING_TO_MIGRATE}\n`) }), { migrating: true });
      print(o.json, { applied }, applied.length ? `applied: ${applied.join(', ')}` : 'the schema is up to date');
    });

  const window = program.command('window').description('the platform registry: windows');
  window
    .command('create')
    .description('register a window')
    .addOption(new Option('--kind <kind>', 'kind of window').choices(WINDOW_KINDS).makeOptionMandatory())
    .requiredOption('--name <name>', 'name, e.g. 郑州市综合窗口平台')
    .option('--region <code>', '6-digit administrative division code')
    .option('--cluster <name>', 'industry cluster (industry windows)')
    .option('--json', 'print JSON')
    .action(async (o: { kind: (typeof WINDOW_KINDS)[number]; name: string; region?: string; cluster?: string; json?: boolean }) => {
      const created = await changeOnDb('admin.createWindow', async (db) => {
        const w = await createWindow(db, { kind: o.kind, name: o.name, region: o.region, cluster: o.cluster });
        return { value: w, change: { target: `window:${w.id}`, windowId: w.id, after: w } };
      });
      print(o.json, { id: created.id }, `created window ${created.id}: ${created.name}`);
    });
  window
    .command('list')
    .description('list windows')
    .option('--json', 'print JSON')
    .action(async (o: { json?: boolean }) => {
      const windows = await onDb((db) => listWindows(db));
      const lines = windows.map((w) => [w.id, w.kind, w.region ?? '-', w.disabled ? 'disabled' : 'active', w.name + (w.cluster ? ` (${w.cluster})` : '')].join('\t'));
      print(o.json, { windows }, ['id\tkind\tregion\tstatus\tname', ...lines].join('\n'));
    });

  const client = program.command('client').description('OIDC clients of windows');
  client
    .command('list')
    .description('list clients (secrets are never shown)')
    .option('--window <id>', 'only this window’s', windowId)
    .option('--json', 'print JSON')
    .action(async (o: { window?: number; json?: boolean }) => {
      const clients = await onDb(async (db) => {
        const ids = o.window !== undefined ? [(await requireWindow(db, o.window)).id] : (await listWindows(db)).map((w) => w.id);
        return (await Promise.all(ids.map((id) => listClients(db, id)))).flat();
      });
      const line = (c: Client) => [c.clientId, c.windowId, c.authMethod, c.grantTypes.join(','), c.thirdParty ? 'third-party' : 'first-party', c.disabled ? 'disabled' : 'active', c.name].join('\t');
      print(o.json, { clients }, ['client_id\twindow\tauth\tgrants\tparty\tstatus\tname', ...clients.map(line)].join('\n'));
    });
  client
    .command('create')
    .description('register a client of a window; prints its secret this once')
    .requiredOption('--window <id>', 'id of the window that owns the client', windowId)
    .requiredOption('--name <name>', 'client name shown to people')
    .option('--redirect-uri <uri>', 'redirect URI (repeatable; matched exactly)', collect)
    .option('--post-logout-redirect-uri <uri>', 'post-logout redirect URI (repeatable)', collect)
    .option('--backchannel-logout-uri <uri>', 'back-channel logout URI')
    .option('--frontchannel-logout-uri <uri>', 'front-channel logout URI (loaded in a hidden frame when a person signs out)')
    .option('--jwks-uri <uri>', 'the client’s JWKS URI (private_key_jwt)')
    .addOption(new Option('--auth-method <method>', 'token endpoint auth method').choices(AUTH_METHODS).default('client_secret_basic'))
    .option('--grant-types <list>', 'comma-separated: authorization_code,refresh_token,client_credentials', 'authorization_code,refresh_token')
    .option('--third-party', 'a third party (service organisation): people are asked for consent')
    .option('--json', 'print JSON')
    .action(
      async (o: {
        window: number;
        name: string;
        redirectUri?: string[];
        postLogoutRedirectUri?: string[];
        backchannelLogoutUri?: string;
        frontchannelLogoutUri?: string;
        jwksUri?: string;
        authMethod: (typeof AUTH_METHODS)[number];
        grantTypes: string;
        thirdParty?: boolean;
        json?: boolean;
      }) => {
        const created = await changeOnDb('admin.createClient', async (db) => {
          const made = await createClient(db, {
            windowId: o.window,
            name: o.name,
            redirectUris: o.redirectUri ?? [],
            postLogoutRedirectUris: o.postLogoutRedirectUri ?? [],
            backchannelLogoutUri: o.backchannelLogoutUri,
            frontchannelLogoutUri: o.frontchannelLogoutUri,
            jwksUri: o.jwksUri,
            authMethod: o.authMethod,
            grantTypes: parseGrantTypes(o.grantTypes) as never,
            thirdParty: o.thirdParty ?? false,
          });
          return { value: made, change: { target: `client:${made.clientId}`, windowId: made.windowId, after: await getClient(db, made.clientId) } };
        });
        print(
          o.json,
          { client_id: created.clientId, ...(created.clientSecret && { client_secret: created.clientSecret }) },
          `client_id: ${created.clientId}\n` + (created.clientSecret ? `client_secret: ${created.clientSecret}\n(the secret is shown this once; only its digest is stored)` : '(public client: no secret)'),
        );
      },
    );

  const apis = program.command('api').description('APIs of windows (resource servers): their clients get JWT access tokens for them with resource=<identifier>');
  const ttlOption = (v: string) => {
    if (!/^\d+$/.test(v)) throw new Refused(`--token-ttl: "${v}" must be a whole number of seconds`);
    return Number(v);
  };
  const apiId = (v: string) => {
    if (!/^\d+$/.test(v)) throw new Refused(`--id: "${v}" is not an API id (a number; see sme-passport api list)`);
    return Number(v);
  };
  const describeApi = (a: Api) => [a.id, a.windowId, a.identifier, a.scopes.join(' '), a.accessTokenTtlSeconds, a.otherWindows ? 'any window' : 'own window', a.name].join('\t');
  const apiChange = (a: { before?: Api; after?: Api }, api: Api) => ({ target: `api:${api.id}`, windowId: api.windowId, ...a });
  apis
    .command('create')
    .description('register an API of a window')
    .requiredOption('--window <id>', 'id of the window that owns the API', windowId)
    .requiredOption('--identifier <uri>', 'the API’s identifier: the resource indicator clients send and the aud of its tokens (absolute, https unless loopback)')
    .requiredOption('--name <name>', 'name shown to people (consent page)')
    .requiredOption('--scope <name>', 'a scope of the API, such as orders:read (repeatable)', collect)
    .option('--token-ttl <seconds>', `access token lifetime, ${MIN_TOKEN_TTL} to ${MAX_TOKEN_TTL} (default ${DEFAULT_TOKEN_TTL})`, ttlOption)
    .option('--allow-other-windows', 'clients of other windows may get tokens for it too')
    .option('--json', 'print JSON')
    .action(async (o: { window: number; identifier: string; name: string; scope: string[]; tokenTtl?: number; allowOtherWindows?: boolean; json?: boolean }) => {
      const created = await changeOnDb('admin.createApi', async (db) => {
        const api = await createApi(db, {
          windowId: o.window,
          identifier: o.identifier,
          name: o.name,
          scopes: o.scope,
          ...(o.tokenTtl !== undefined && { accessTokenTtlSeconds: o.tokenTtl }),
          otherWindows: o.allowOtherWindows ?? false,
        });
        return { value: api, change: apiChange({ after: api }, api) };
      });
      print(o.json, created, `created API ${created.id}: ${created.identifier}`);
    });
  apis
    .command('list')
    .description('list APIs')
    .option('--window <id>', 'only this window’s', windowId)
    .option('--json', 'print JSON')
    .action(async (o: { window?: number; json?: boolean }) => {
      const all = await onDb((db) => listApis(db, o.window));
      print(o.json, { apis: all }, ['id\twindow\tidentifier\tscopes\ttoken_ttl\tclients_of\tname', ...all.map(describeApi)].join('\n'));
    });
  apis
    .command('update')
    .description('change an API (the options given; its identifier and window stay)')
    .requiredOption('--id <id>', 'the API id (see sme-passport api list)', apiId)
    .option('--name <name>', 'name shown to people')
    .option('--scope <name>', 'the API’s scopes, replacing the current ones (repeatable)', collect)
    .option('--token-ttl <seconds>', `access token lifetime, ${MIN_TOKEN_TTL} to ${MAX_TOKEN_TTL}`, ttlOption)
    .addOption(new Option('--allow-other-windows', 'clients of other windows may get tokens for it').conflicts('ownWindowOnly'))
    .option('--own-window-only', 'only clients of its own window may get tokens for it')
    .option('--json', 'print JSON')
    .action(async (o: { id: number; name?: string; scope?: string[]; tokenTtl?: number; allowOtherWindows?: boolean; ownWindowOnly?: boolean; json?: boolean }) => {
      const otherWindows = o.allowOtherWindows ? true : o.ownWindowOnly ? false : undefined;
      const updated = await changeOnDb('admin.updateApi', async (db) => {
        const change = await updateApi(db, o.id, { name: o.name, scopes: o.scope, accessTokenTtlSeconds: o.tokenTtl, otherWindows });
        return { value: change.after, change: apiChange(change, change.after) };
      });
      print(o.json, updated, describeApi(updated));
    });
  apis
    .command('delete')
    .description('delete an API: no new tokens for it; those issued answer inactive at introspection')
    .requiredOption('--id <id>', 'the API id (see sme-passport api list)', apiId)
    .option('--json', 'print JSON')
    .action(async (o: { id: number; json?: boolean }) => {
      const gone = await changeOnDb('admin.deleteApi', async (db) => {
        const api = await deleteApi(db, o.id);
        return { value: api, change: apiChange({ before: api }, api) };
      });
      print(o.json, { id: gone.id, deleted: true }, `deleted API ${gone.id}: ${gone.identifier}`);
    });

  const account = program.command('account').description('person accounts');
  account
    .command('disable')
    .description('disable an account: its sessions end, its tokens are revoked, and the windows it used are told (back-channel logout)')
    .argument('<id-or-username>', 'account id or username')
    .option('--json', 'print JSON')
    .action(async (who: string, o: { json?: boolean }) => {
      const done = await onDb(async (db) => {
        // First: a wrong master key is refused before anything changes.
        const provider = await standaloneProvider(db, loadConfig(io.env), consoleLogger);
        const found = await requireAccount(db, who);
        await setAccountStatus(db, found.id, 'disabled');
        const ended = await endSessionsOf(provider, db, found.id, { everything: true });
        await recordEvent(db, { actor: cliActor(), event: 'admin.disableAccount', outcome: 'success', target: `account:${found.id}`, before: { status: found.status }, after: { status: 'disabled' } });
        return { account: found, ...ended };
      });
      print(
        o.json,
        { id: done.account.id, status: 'disabled', sessions_ended: done.sessions, windows_notified: done.notified },
        `${done.account.username} is disabled: ${done.sessions} sessions ended, ${done.notified} windows to be notified (sme-passport logout-deliveries --window ID)`,
      );
    });
  account
    .command('enable')
    .description('enable a disabled account again')
    .argument('<id-or-username>', 'account id or username')
    .option('--json', 'print JSON')
    .action(async (who: string, o: { json?: boolean }) => {
      const found = await changeOnDb('admin.enableAccount', async (db) => {
        const a = await requireAccount(db, who);
        await setAccountStatus(db, a.id, 'active');
        return { value: a, change: { target: `account:${a.id}`, before: { status: a.status }, after: { status: 'active' } } };
      });
      print(o.json, { id: found.id, status: 'active' }, `${found.username} is enabled`);
    });
  account
    .command('create')
    .description('create a person account')
    .requiredOption('--username <name>', 'unique username (starts with a letter)')
    .requiredOption('--name <display>', 'display name')
    .option('--phone <phone>', 'mainland mobile number')
    .option('--email <email>', 'email address')
    .option('--password-stdin', 'read the password from standard input (required)')
    .option('--json', 'print JSON')
    .action(async (o: { username: string; name: string; phone?: string; email?: string; passwordStdin?: boolean; json?: boolean }) => {
      if (!o.passwordStdin) throw new Refused('--password-stdin is required: passwords are never taken as arguments (they would show in the process list and shell history)');
      const password = (await io.readStdin()).replace(/\r?\n$/, '');
      const policy = loadConfig(io.env).security.passwords;
      const created = await changeOnDb('account.created', async (db) => {
        const a = await createAccount(db, { username: o.username, displayName: o.name, phone: o.phone, email: o.email, password }, policy);
        return { value: a, change: { target: `account:${a.id}`, after: { username: a.username } } };
      });
      print(o.json, { id: created.id }, `created account ${created.id} (${created.username})`);
    });

  const enterprise = program.command('enterprise').description('the enterprise registry: service objects and their members');
  enterprise
    .command('create')
    .description('register an enterprise, social organisation, team or individual business')
    .option('--uscc <code>', 'Unified Social Credit Code (every type but team needs one)')
    .requiredOption('--name <name>', 'registered name')
    .addOption(new Option('--type <type>', 'kind of service object').choices(ENTERPRISE_TYPES).makeOptionMandatory())
    .requiredOption('--region <code>', '6-digit administrative division code')
    .option('--industry <text>', 'industry')
    .addOption(new Option('--status <status>', 'initial status').choices(['pending', 'verified']).default('pending'))
    .option('--json', 'print JSON')
    .action(async (o: { uscc?: string; name: string; type: Enterprise['type']; region: string; industry?: string; status: 'pending' | 'verified'; json?: boolean }) => {
      const created = await changeOnDb('enterprise.created', async (db) => {
        const e = await createEnterprise(db, { uscc: o.uscc, name: o.name, type: o.type, region: o.region, industry: o.industry, status: o.status });
        return { value: e, change: { target: `enterprise:${e.id}`, enterpriseId: e.id, after: e } };
      });
      print(o.json, { id: created.id }, `created enterprise ${created.id}: ${created.name} (${created.status})`);
    });
  enterprise
    .command('add-member')
    .description('make a person a member of an enterprise')
    .requiredOption('--enterprise <id-or-uscc>', 'enterprise id or USCC')
    .requiredOption('--account <id-or-username>', 'account id or username')
    .addOption(new Option('--role <role>', 'role in the enterprise').choices(ROLES).makeOptionMandatory())
    .option('--json', 'print JSON')
    .action(async (o: { enterprise: string; account: string; role: (typeof ROLES)[number]; json?: boolean }) => {
      const done = await changeOnDb('membership.added', async (db) => {
        const e = await requireEnterprise(db, o.enterprise);
        const account = await requireAccount(db, o.account);
        await addMember(db, { enterpriseId: e.id, accountId: account.id, role: o.role });
        return { value: { enterprise: e, account }, change: { target: `enterprise:${e.id}`, enterpriseId: e.id, after: { accountId: account.id, role: o.role } } };
      });
      print(o.json, { enterprise_id: done.enterprise.id, account_id: done.account.id, role: o.role }, `${done.account.username} is now ${o.role} of ${done.enterprise.name}`);
    });
  enterprise
    .command('set-status')
    .description('verify, suspend or reset an enterprise (window administrators will do this in the console)')
    .requiredOption('--enterprise <id-or-uscc>', 'enterprise id or USCC')
    .addOption(new Option('--status <status>', 'new status').choices(ENTERPRISE_STATUSES).makeOptionMandatory())
    .option('--json', 'print JSON')
    .action(async (o: { enterprise: string; status: Enterprise['status']; json?: boolean }) => {
      const updated = await changeOnDb('admin.setEnterpriseStatus', async (db) => {
        const before = await requireEnterprise(db, o.enterprise);
        const after = await setEnterpriseStatus(db, before.id, o.status);
        return { value: after, change: { target: `enterprise:${after.id}`, enterpriseId: after.id, before, after } };
      });
      print(o.json, { id: updated.id, status: updated.status }, `${updated.name} is now ${updated.status}`);
    });
  enterprise
    .command('find')
    .description('find enterprises by USCC or by name (prefix, then contains)')
    .argument('<query>', 'a USCC or part of a name')
    .option('--limit <n>', 'at most this many', (v) => {
      if (!/^\d+$/.test(v) || Number(v) < 1 || Number(v) > 1000) throw new Refused(`--limit: "${v}" must be a whole number from 1 to 1000`);
      return Number(v);
    }, 20)
    .option('--json', 'print JSON')
    .action(async (query: string, o: { limit: number; json?: boolean }) => {
      const found = await onDb((db) => searchEnterprises(db, query, o.limit));
      const lines = found.map((e) => [e.id, e.uscc ?? '-', e.type, e.region, e.status, e.name].join('\t'));
      print(o.json, { enterprises: found }, found.length ? ['id\tuscc\ttype\tregion\tstatus\tname', ...lines].join('\n') : 'no enterprise found');
    });

  enterprise
    .command('import')
    .description('load enterprises from CSV (header uscc,name,type,region,industry); rejected rows go to a report')
    .argument('<file>', 'the CSV file')
    .option('--dry-run', 'check everything and report, but write nothing')
    .option('--report <file>', 'where to write rejected rows (default: FILE.rejected.csv)')
    .option('--json', 'print JSON')
    .action(async (file: string, o: { dryRun?: boolean; report?: string; json?: boolean }) => {
      const source = path.resolve(io.cwd, file);
      const reportPath = path.resolve(io.cwd, o.report ?? `${file}.rejected.csv`);
      let size: number;
      try {
        size = fs.statSync(source).size;
      } catch {
        throw new Refused(`${file}: cannot read this file`);
      }
      const input = fs.createReadStream(source);
      const report = stringify({ header: true, columns: ['line', 'value', 'reason'] });
      const reportDone = new Promise<void>((resolve, reject) => report.pipe(fs.createWriteStream(reportPath)).on('finish', resolve).on('error', reject));
      const bar = io.interactive ? new SingleBar({ format: 'importing [{bar}] {percentage}% | {read} rows | {inserted} new | {rejected} rejected', hideCursor: true }) : undefined;
      bar?.start(size, 0, { read: 0, inserted: 0, rejected: 0 });
      let summary: ImportSummary;
      let stopped: ImportStopped | undefined;
      try {
        summary = await onDb((db) =>
          importEnterprises(db, input, {
            dryRun: o.dryRun,
            onRejected: (r) => report.write(r),
            onProgress: (s) => bar?.update(input.bytesRead, s),
          }),
        );
      } catch (err) {
        if (!(err instanceof ImportStopped)) throw err;
        stopped = err;
        summary = err.summary;
      } finally {
        bar?.stop();
        report.end();
        await reportDone;
      }
      if (summary.rejected === 0) fs.rmSync(reportPath, { force: true });
      const reportNote = summary.rejected ? `; rejected rows are listed in ${reportPath}` : '';
      const failure = stopped && `stopped at line ${stopped.stoppedAtLine} on an unexpected failure (${failureKind(stopped.cause)})`;
      // One record for the whole file: a record per row would be a million chained
      // writes. A stopped import is on record too, with what it committed.
      let recorded = true;
      if (!o.dryRun) {
        const record = { actor: cliActor(), event: 'enterprise.imported', target: `file:${path.basename(source)}` };
        await onDb((db) =>
          recordEvent(db, stopped ? { ...record, outcome: 'failure', reason: failure, after: { ...summary, stoppedAtLine: stopped.stoppedAtLine } } : { ...record, outcome: 'success', after: summary }),
        ).catch((err: unknown) => {
          if (!stopped) throw err;
          recorded = false;
        });
      }
      if (stopped) {
        if (o.dryRun) throw new Failed(`the dry run ${failure}; nothing was written`);
        throw new Failed(
          `the import ${failure}: ${summary.inserted} rows were imported (${summary.existing} were registered already) and stay imported, ${summary.rejected} lines were rejected${reportNote}; ` +
            `lines from ${stopped.stoppedAtLine} on were not imported${recorded ? '' : ', and the audit record of this could not be written'}. Run the same file again to finish: rows already imported count as existing.`,
        );
      }
      print(
        o.json,
        { ...summary, dry_run: Boolean(o.dryRun), ...(summary.rejected && { report: reportPath }) },
        `${o.dryRun ? 'dry run: would import' : 'imported'} ${summary.inserted} of ${summary.read} rows (${summary.existing} already registered, ${summary.rejected} rejected)${reportNote}`,
      );
    });

  const admin = program.command('admin').description('administrator roles (separation of duties: system, security, audit, window)');
  const roleCommand = (name: 'grant' | 'revoke', description: string, act: typeof grantRole) =>
    admin
      .command(name)
      .description(description)
      .requiredOption('--account <id-or-username>', 'account id or username')
      .addOption(new Option('--role <role>', 'administrator role').choices(ADMIN_ROLES).makeOptionMandatory())
      .option('--window <id>', 'the window, for window_admin', windowId)
      .option('--json', 'print JSON')
      .action(async (o: { account: string; role: AdminRole; window?: number; json?: boolean }) => {
        const roles = await changeOnDb(name === 'grant' ? 'admin.grantRole' : 'admin.revokeRole', async (db) => {
          const found = await requireAccount(db, o.account);
          const grant = { role: o.role, windowId: o.window ?? null };
          await act(db, { accountId: found.id, role: o.role, ...(o.window !== undefined && { windowId: o.window }) });
          return {
            value: { account: found, roles: await rolesOf(db, found.id) },
            change: { target: `account:${found.id}`, windowId: grant.windowId, ...(name === 'grant' ? { after: grant } : { before: grant }) },
          };
        });
        print(o.json, { account_id: roles.account.id, roles: roles.roles }, `${roles.account.username} now holds: ${roles.roles.map((r) => r.role + (r.windowId ? `@${r.windowId}` : '')).join(', ') || 'no administrator role'}`);
      });
  roleCommand('grant', 'grant an administrator role', grantRole);
  roleCommand('revoke', 'revoke an administrator role', revokeRole);

  // One flag prefix per duty: --system-admin NAME, --system-admin-name, -phone, -email.
  const dutyFlag = (role: ProvinceRole) => `--${role.replace('_', '-')}`;
  const DETAIL_FLAG: Record<string, string> = { username: '', displayName: '-name', phone: '-phone', email: '-email' };
  const bootstrap = admin
    .command('bootstrap')
    .description('create the first province administrators, one account per duty (system_admin, security_admin, audit_admin), each with a one-time password printed this once');
  for (const role of PROVINCE_ROLES) {
    const d = BOOTSTRAP_DEFAULTS[role];
    bootstrap
      .option(`${dutyFlag(role)} <username>`, `username of the ${role}`, d.username)
      .option(`${dutyFlag(role)}-name <name>`, `display name of the ${role}`, d.displayName)
      .option(`${dutyFlag(role)}-phone <phone>`, `mainland mobile number of the ${role}`)
      .option(`${dutyFlag(role)}-email <email>`, `email address of the ${role}`);
  }
  bootstrap.option('--json', 'print JSON').action(async (o: Record<string, string | boolean | undefined>) => {
    const value = (role: ProvinceRole, suffix: string) => o[`${role.replace('_a', 'A')}${suffix}`] as string | undefined;
    const people = Object.fromEntries(
      PROVINCE_ROLES.map((role) => [role, { username: value(role, ''), displayName: value(role, 'Name'), phone: value(role, 'Phone'), email: value(role, 'Email') }]),
    ) as Record<ProvinceRole, BootstrapPerson>;
    const policy = loadConfig(io.env).security.passwords;
    const made = await onDb((db) => bootstrapAdministrators(db, people, policy, cliActor())).catch((err: unknown) => {
      if (err instanceof AdministratorsExist) throw new Refused(err.message.slice(err.field.length + 2));
      if (!(err instanceof InputError) || !PROVINCE_ROLES.some((r) => err.field.startsWith(`${r}.`))) throw err;
      const [role, detail] = err.field.split('.') as [ProvinceRole, string];
      throw new Refused(`${dutyFlag(role)}${DETAIL_FLAG[detail] ?? ''}: ${err.message.slice(err.field.length + 2)}; nothing was created`);
    });
    print(
      o.json as boolean | undefined,
      { administrators: made.map((m) => ({ role: m.role, id: m.account.id, username: m.account.username, one_time_password: m.oneTimePassword })) },
      [
        'created the province administrators; give each account to its own person (separation of duties):',
        ...made.map((m) => `  ${m.role}\t${m.account.username}\tone-time password: ${m.oneTimePassword}`),
        'The passwords are shown this once. At the first sign-in (the admin console, /admin) each person sets their own password and enrols an authenticator app.',
      ].join('\n'),
    );
  });

  const keys = program.command('keys').description('signing keys: list, rotate (publish now, sign later), retire');
  const describeKey = (k: { kid: string; use: string; alg: string; activeFrom: Date; retiredAt: Date | null }) =>
    [k.kid, k.use, k.alg, new Date(k.activeFrom).toISOString(), k.retiredAt ? `retired ${new Date(k.retiredAt).toISOString()}` : new Date(k.activeFrom).getTime() > Date.now() ? 'published, not signing yet' : 'live'].join('\t');
  keys
    .command('list')
    .description('list keys')
    .option('--json', 'print JSON')
    .action(async (o: { json?: boolean }) => {
      const all = await onDb((db) => listKeys(db));
      print(o.json, { keys: all }, ['kid\tuse\talg\tactive_from\tstate', ...all.map(describeKey)].join('\n'));
    });
  keys
    .command('rotate')
    .description('make new RS256 and ES256 signing keys: published at once, signing after the delay')
    .option('--delay <seconds>', 'seconds before the new keys sign (default KEY_ROTATION_DELAY)', (v) => {
      if (!/^\d+$/.test(v)) throw new Refused(`--delay: "${v}" must be a whole number of seconds`);
      return Number(v);
    })
    .option('--json', 'print JSON')
    .action(async (o: { delay?: number; json?: boolean }) => {
      const config = loadConfig(io.env);
      const delay = o.delay ?? config.keys.rotationDelaySeconds;
      const made = await changeOnDb('admin.rotateKeys', async (db) => {
        const keys = await rotateSigningKeys(db, await openMasterKey(db, config), delay);
        return { value: keys, change: { target: keys.map((k) => `key:${k.kid}`).join(' '), after: keys } };
      });
      print(o.json, { keys: made }, made.map(describeKey).join('\n'));
    });
  keys
    .command('retire')
    .description('stop publishing a signing key (tokens it signed stop verifying)')
    .requiredOption('--kid <kid>', 'the key id')
    .option('--json', 'print JSON')
    .action(async (o: { kid: string; json?: boolean }) => {
      await changeOnDb('admin.retireKey', async (db) => ({ value: await retireKey(db, o.kid), change: { target: `key:${o.kid}` } }));
      print(o.json, { kid: o.kid, retired: true }, `${o.kid} is retired`);
    });

  program
    .command('stats')
    .description('service figures from the audit trail: one window, or every window side by side')
    .option('--window <id>', 'the window (all windows when left out)', windowId)
    .option('--year <yyyy>', 'the year (China Standard Time; default: this year)', (v) => {
      const parsed = yearSchema.safeParse(v);
      if (!parsed.success) throw new Refused(`--year: "${v}" ${issuesOf(parsed.error)[0]!.message}`);
      return parsed.data;
    })
    .option('--json', 'print JSON')
    .action(async (given: { window?: number; year?: number; json?: boolean }) => {
      const o = { ...given, year: given.year ?? currentYear() };
      const { windows, figures } = await onDb(async (db) => {
        if (o.window !== undefined) await requireWindow(db, o.window);
        const windows = await listWindows(db);
        // Every window is listed, one without activity at zero, as in the console.
        return { windows, figures: await windowFigures(db, o.year, o.window, o.window === undefined ? windows.map((w) => w.id) : []) };
      });
      const names = new Map(windows.map((w) => [w.id, w.name]));
      const pct = (x: number | null) => (x === null ? '-' : `${(x * 100).toFixed(1)}%`);
      const lines = figures.map((f) =>
        [f.windowId, f.signIns, f.persons, f.enterprises, `${pct(f.targetProgress)} of ${YEARLY_TARGET}`, pct(f.mfaShare), f.failures, f.lockouts, names.get(f.windowId) ?? ''].join('\t'),
      );
      print(
        o.json,
        { year: o.year, target: YEARLY_TARGET, windows: figures.map((f) => ({ ...f, name: names.get(f.windowId) ?? null })) },
        lines.length ? ['window\tsign_ins\tpersons\tenterprises\ttarget\tmfa\tfailures\tlockouts\tname', ...lines].join('\n') : `nothing on record in ${o.year}`,
      );
    });

  program
    .command('logout-deliveries')
    .description('back-channel logout deliveries of a window: the delivery rate, the latest failures, what is still pending')
    .requiredOption('--window <id>', 'the window', windowId)
    .option('--days <n>', 'over the last n days (1 to 30)', (v) => {
      const parsed = DAYS.safeParse(v);
      if (!parsed.success) throw new Refused(`--days: "${v}" ${parsed.error.issues[0]!.message}`);
      return parsed.data;
    }, 7)
    .option('--json', 'print JSON')
    .action(async (o: { window: number; days: number; json?: boolean }) => {
      const f = await onDb(async (db) => {
        await requireWindow(db, o.window);
        return deliveryFigures(db, o.window, o.days);
      });
      const rate = f.rate === null ? '-' : `${(f.rate * 100).toFixed(1)}%`;
      const human = [
        `window ${o.window}, last ${f.days} days: ${f.total} notifications, ${f.delivered} delivered (${rate}), ${f.abandoned} abandoned, ${f.pending} pending`,
        ...(f.failures.length ? ['latest failed attempts:', ...f.failures.map((x) => `  ${x.at.toISOString()}\t${x.clientId}\t${x.httpStatus ?? '-'}\t${x.error ?? ''}`)] : []),
        ...(f.waiting.length
          ? ['pending:', ...f.waiting.map((w) => `  ${w.id}\t${w.clientId}\tsince ${w.createdAt.toISOString()}\t${w.attempts} attempts\tnext ${w.nextAttemptAt.toISOString()}\t${w.lastError ?? ''}`)]
          : []),
      ].join('\n');
      print(o.json, { window: o.window, ...f }, human);
    });

  program
    .command('purge')
    .description('delete expired sessions, codes, tokens, sign-in counters and choices (the server also does this periodically)')
    .option('--json', 'print JSON')
    .action(async (o: { json?: boolean }) => {
      const deleted = await onDb((db) => purgeExpired(db));
      print(o.json, { deleted }, `deleted ${deleted} expired rows`);
    });

  const audit = program.command('audit').description('the audit trail: verify its hash chain, export it, purge what is past the retention');
  audit
    .command('verify')
    .description('check every record of the trail against its hash and its link to the one before (exit code 1 when one does not match)')
    .option('--json', 'print JSON')
    .action(async (o: { json?: boolean }) => {
      const r = await onDb((db) => verifyTrail(db));
      const anchor = r.anchor && { id: r.anchor.id, last_event_id: r.anchor.lastEventId, last_hash: r.anchor.lastHash, purged_before: r.anchor.purgedBefore, count: r.anchor.count };
      if (!r.ok) {
        if (!o.json) throw new Refused(`the audit trail is broken: ${r.message} (${r.count} records ${r.id === null ? 'after the anchor' : 'before it'} are intact)`);
        io.stdout(`${JSON.stringify({ ok: false, id: r.id, problem: r.problem, message: r.message, checked: r.count, anchor })}\n`);
        throw new ReportedRefusal();
      }
      const from = r.anchor ? `after the purge anchor ${r.anchor.id} (records up to ${r.anchor.lastEventId} purged)` : 'from the start';
      print(
        o.json,
        { ok: true, count: r.count, first_id: r.firstId, last_id: r.lastId, head: r.head, anchor },
        `the audit trail is intact: ${r.count} record${r.count === 1 ? '' : 's'}${r.count ? ` (${r.firstId} to ${r.lastId})` : ''}, ${from}\nlast hash: ${r.head}`,
      );
    });
  audit
    .command('export')
    .description('write the records of a period as CSV or JSON lines (from <= time < to)')
    .requiredOption('--from <date>', 'first day or instant (YYYY-MM-DD: local midnight; or YYYY-MM-DDTHH:MM[:SS][Z|+08:00])')
    .requiredOption('--to <date>', 'end, exclusive (same forms)')
    .option('--format <format>', `${EXPORT_FORMATS.join(' or ')}`, 'csv')
    .option('--actor <id>', 'only this actor (account id, client id, cli:<user>)')
    .option('--window <id>', 'only this window')
    .option('--event <type>', 'only this event type, e.g. sign_in')
    .option('--outcome <outcome>', 'only success or failure')
    .option('--output <file>', 'write to this file (default: standard output)')
    .action(async (o: { from: string; to: string; format: string; actor?: string; window?: string; event?: string; outcome?: string; output?: string }) => {
      const filter = parseInput(exportFilterSchema, { from: o.from, to: o.to, actor: o.actor, windowId: o.window, event: o.event, outcome: o.outcome });
      if (!EXPORT_FORMATS.includes(o.format as ExportFormat)) throw new Refused(`--format: "${o.format}" must be ${EXPORT_FORMATS.join(' or ')}`);
      const format = o.format as ExportFormat;
      const file = o.output === undefined ? undefined : path.resolve(io.cwd, o.output);
      await onDb(async (db) => {
        const target = file ? openForWriting(file, '--output', 'w') : undefined;
        const out = target?.stream ?? new Writable({ decodeStrings: false, write: (chunk, _encoding, done) => (io.stdout(String(chunk)), done()) });
        let count: number;
        try {
          count = await exportEvents(db, filter, out, { format });
          await target?.close();
        } catch (err) {
          // No half-written file that could pass for a whole export.
          target?.stream.destroy();
          if (file) fs.rmSync(file, { force: true });
          throw err;
        }
        // Reading the trail out is on record too.
        const { from, to, ...only } = filter;
        await recordEvent(db, { actor: cliActor(), event: 'audit.export', outcome: 'success', after: { from, to, ...only, format, count, ...(file && { file }) } });
        if (file) io.stdout(`wrote ${count} records to ${file}\n`);
      });
    });
  audit
    .command('purge')
    .description('delete the records older than a date, past the retention (AUDIT_RETENTION_DAYS), leaving an anchor so the chain still verifies')
    .requiredOption('--before <date>', 'delete records older than this (YYYY-MM-DD or a date and time)')
    .option('--export <file>', 'first write the records to this new file (JSON lines); nothing is deleted if that fails')
    .option('--json', 'print JSON')
    .action(async (o: { before: string; export?: string; json?: boolean }) => {
      const before = parseInput(z.strictObject({ before: auditDate }), { before: o.before }).before;
      const retentionDays = auditRetentionDays(io.env);
      checkPurgeDate(before, retentionDays);
      const file = o.export === undefined ? undefined : path.resolve(io.cwd, o.export);
      let started = false;
      const result = await onDb((db) =>
        purgeTrail(db, {
          before,
          retentionDays,
          actor: cliActor(),
          exportTo: file
            ? async () => {
                const target = openForWriting(file, '--export', 'wx');
                started = true;
                return { out: target.stream, done: target.close };
              }
            : undefined,
        }),
      ).catch((err: unknown) => {
        if (file && started) fs.rmSync(file, { force: true });
        throw err;
      });
      print(
        o.json,
        { purged: result.purged, ...(result.anchor && { anchor: { id: result.anchor.id, last_event_id: result.anchor.lastEventId, last_hash: result.anchor.lastHash } }), ...(file && result.purged && { export: file }) },
        result.purged
          ? `purged ${result.purged} record${result.purged === 1 ? '' : 's'} (up to record ${result.anchor!.lastEventId}); the chain now starts at anchor ${result.anchor!.id}${file ? `; they are in ${file}` : ''}`
          : `no record is older than ${before.toISOString()}: nothing purged`,
      );
    });

  return program;
}

export async function runCli(argv: string[], io: Io = processIo): Promise<number> {
  try {
    await buildCli(io).parseAsync(argv, { from: 'user' });
    return 0;
  } catch (err) {
    if (err instanceof CommanderError) {
      if (err.code === 'commander.unknownOption' && argv.some((a) => a === '--password' || a.startsWith('--password='))) {
        io.stderr('hint: a password is read from standard input with --password-stdin, never taken as an argument (it would show in the process list and shell history)\n');
      }
      return err.exitCode === 0 ? 0 : EXIT.usage;
    }
    if (err instanceof ReportedRefusal) return EXIT.refused;
    if (err instanceof InputError) {
      io.stderr(`error: ${flagFor(err.field)}: ${err.message.slice(err.field.length + 2)}\n`);
      return EXIT.refused;
    }
    if (err instanceof Refused || err instanceof DatabaseInUseError) {
      io.stderr(`error: ${err.message}\n`);
      return EXIT.refused;
    }
    if (err instanceof ConfigError || err instanceof MasterKeyMismatch) {
      io.stderr(`error: ${err.message}\n`);
      return EXIT.usage;
    }
    if (err instanceof DatabaseUnavailable) {
      io.stderr(`error: the database cannot be reached (${err.reason}); try again when it answers\n`);
      return EXIT.failure;
    }
    if (err instanceof Failed || err instanceof UnknownMigrations) {
      io.stderr(`error: ${err.message}\n`);
      return EXIT.failure;
    }
    io.stderr(`error: unexpected failure (${failureKind(err)})\n`);
    return EXIT.failure;
  }
}

// Runs a command on a database this process holds, with the settings of `env`: one
// forwarded by another CLI process to the server holding the embedded database.
export async function runCliOn(db: Db, argv: string[], caller: { stdin: string; cwd: string; env: Io['env'] }): Promise<CliOutcome> {
  const out = { stdout: '', stderr: '' };
  const code = await runCli(argv, { stdout: (s) => (out.stdout += s), stderr: (s) => (out.stderr += s), readStdin: async () => caller.stdin, cwd: caller.cwd, interactive: false, env: caller.env, db });
  return { code, ...out };
}

// The process entry: on an embedded database held by a running server, the server
// runs the command; otherwise this process does.
export async function main(argv: string[]): Promise<number> {
  let config;
  try {
    config = loadConfig();
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    process.stderr.write(`error: ${err.message}\n`);
    return EXIT.usage;
  }
  const socket = cliSocketPath(config.dataDir);
  if (config.databaseUrl || !embeddedDatabaseOwner(config.dataDir) || !fs.existsSync(socket)) return runCli(argv);
  let stdin = '';
  try {
    if (argv.includes('--password-stdin')) stdin = await processIo.readStdin();
  } catch (err) {
    process.stderr.write(`error: ${(err as Error).message}\n`);
    return EXIT.refused;
  }
  const answer = await relayToServer(socket, argv, stdin, process.cwd());
  process.stdout.write(answer.stdout);
  process.stderr.write(answer.stderr);
  return answer.code;
}
