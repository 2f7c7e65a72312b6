import { Command, CommanderError, Option } from 'commander';
import { ConfigError, loadConfig } from './config.ts';
import { DatabaseInUseError, openDatabase, type Db } from './db/connect.ts';
import { migrate } from './db/migrate.ts';
import { InputError } from './errors.ts';
import { createAccount } from './accounts/accounts.ts';
import { AUTH_METHODS, createClient, parseGrantTypes } from './windows/clients.ts';
import { createWindow, listWindows, WINDOW_KINDS } from './windows/windows.ts';
import { purgeExpiredArtifacts } from './oidc/adapter.ts';

// The administrator's command line. Exit codes scripts can rely on:
// 0 done, 1 refused (bad input, conflict, not found), 2 usage or configuration error,
// 3 unexpected failure.

const EXIT = { refused: 1, usage: 2, failure: 3 } as const;

class Refused extends Error {}

type Io = { stdout: (s: string) => void; stderr: (s: string) => void; readStdin: () => Promise<string> };

const processIo: Io = {
  stdout: (s) => process.stdout.write(s),
  stderr: (s) => process.stderr.write(s),
  async readStdin() {
    if (process.stdin.isTTY) throw new Refused('--password-stdin: pipe the password on standard input, e.g. printf %s "$PW" | sme-passport ...');
    const chunks: Buffer[] = [];
    for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
    return Buffer.concat(chunks).toString('utf8');
  },
};

async function withDatabase<T>(work: (db: Db) => Promise<T>, options: { migrating?: boolean } = {}): Promise<T> {
  const database = await openDatabase(loadConfig());
  try {
    if (!options.migrating) {
      const [, pending] = (await database.db.migrate.list({ directory: new URL('../migrations', import.meta.url).pathname, loadExtensions: ['.ts'] })) as [unknown[], unknown[]];
      if (pending.length > 0) throw new Refused('the database schema is not up to date: run `sme-passport migrate` first');
    }
    return await work(database.db);
  } finally {
    await database.close();
  }
}

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
  jwksUri: '--jwks-uri',
  authMethod: '--auth-method',
  grantTypes: '--grant-types',
  displayName: '--name',
  window: '--window',
  password: '--password-stdin',
};
const flagFor = (field: string) => FLAG_OF[field.split('.')[0]!] ?? `--${field.split('.')[0]!.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`;

export function buildCli(io: Io = processIo): Command {
  const print = (json: boolean | undefined, data: object, human: string) => io.stdout(json ? `${JSON.stringify(data)}\n` : `${human}\n`);

  const program = new Command('sme-passport')
    .description('Administrator command line of the sme-passport identity provider')
    .exitOverride()
    .configureOutput({ writeOut: io.stdout, writeErr: io.stderr });

  program
    .command('migrate')
    .description('apply pending database migrations')
    .option('--json', 'print JSON')
    .action(async (o: { json?: boolean }) => {
      const applied = await withDatabase((db) => migrate(db), { migrating: true });
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
      const created = await withDatabase((db) => createWindow(db, { kind: o.kind, name: o.name, region: o.region, cluster: o.cluster }));
      print(o.json, { id: created.id }, `created window ${created.id}: ${created.name}`);
    });
  window
    .command('list')
    .description('list windows')
    .option('--json', 'print JSON')
    .action(async (o: { json?: boolean }) => {
      const windows = await withDatabase((db) => listWindows(db));
      const lines = windows.map((w) => [w.id, w.kind, w.region ?? '-', w.disabled ? 'disabled' : 'active', w.name + (w.cluster ? ` (${w.cluster})` : '')].join('\t'));
      print(o.json, { windows }, ['id\tkind\tregion\tstatus\tname', ...lines].join('\n'));
    });

  program
    .command('client')
    .description('OIDC clients of windows')
    .command('create')
    .description('register a client of a window; prints its secret this once')
    .requiredOption('--window <id>', 'id of the window that owns the client', windowId)
    .requiredOption('--name <name>', 'client name shown to people')
    .option('--redirect-uri <uri>', 'redirect URI (repeatable; matched exactly)', collect)
    .option('--post-logout-redirect-uri <uri>', 'post-logout redirect URI (repeatable)', collect)
    .option('--backchannel-logout-uri <uri>', 'back-channel logout URI')
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
        jwksUri?: string;
        authMethod: (typeof AUTH_METHODS)[number];
        grantTypes: string;
        thirdParty?: boolean;
        json?: boolean;
      }) => {
        const created = await withDatabase((db) =>
          createClient(db, {
            windowId: o.window,
            name: o.name,
            redirectUris: o.redirectUri ?? [],
            postLogoutRedirectUris: o.postLogoutRedirectUri ?? [],
            backchannelLogoutUri: o.backchannelLogoutUri,
            jwksUri: o.jwksUri,
            authMethod: o.authMethod,
            grantTypes: parseGrantTypes(o.grantTypes) as never,
            thirdParty: o.thirdParty ?? false,
          }),
        );
        print(
          o.json,
          { client_id: created.clientId, ...(created.clientSecret && { client_secret: created.clientSecret }) },
          `client_id: ${created.clientId}\n` + (created.clientSecret ? `client_secret: ${created.clientSecret}\n(the secret is shown this once; only its digest is stored)` : '(public client: no secret)'),
        );
      },
    );

  program
    .command('account')
    .description('person accounts')
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
      const created = await withDatabase((db) => createAccount(db, { username: o.username, displayName: o.name, phone: o.phone, email: o.email, password }));
      print(o.json, { id: created.id }, `created account ${created.id} (${created.username})`);
    });

  program
    .command('purge')
    .description('delete expired sessions, codes and tokens (the server also does this periodically)')
    .option('--json', 'print JSON')
    .action(async (o: { json?: boolean }) => {
      const deleted = await withDatabase((db) => purgeExpiredArtifacts(db));
      print(o.json, { deleted }, `deleted ${deleted} expired artifacts`);
    });

  return program;
}

export async function runCli(argv: string[], io: Io = processIo): Promise<number> {
  try {
    await buildCli(io).parseAsync(argv, { from: 'user' });
    return 0;
  } catch (err) {
    if (err instanceof CommanderError) return err.exitCode === 0 ? 0 : EXIT.usage;
    if (err instanceof InputError) {
      io.stderr(`error: ${flagFor(err.field)}: ${err.message.slice(err.field.length + 2)}\n`);
      return EXIT.refused;
    }
    if (err instanceof Refused || err instanceof DatabaseInUseError) {
      io.stderr(`error: ${err.message}\n`);
      return EXIT.refused;
    }
    if (err instanceof ConfigError) {
      io.stderr(`error: ${err.message}\n`);
      return EXIT.usage;
    }
    io.stderr(`error: unexpected failure: ${(err as Error).message}\n`);
    return EXIT.failure;
  }
}
