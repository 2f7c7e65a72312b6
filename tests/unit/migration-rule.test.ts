import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseAst } from 'vitest/node';
import { ROOT } from '../helpers/processes.ts';

// The rolling-upgrade rule (README, "Upgrades"): a migration after the baseline only adds
// (expand), so that the nodes still running the release before it keep working on the
// new schema. What takes something away (contract) waits for a later release, once no
// running node uses the old shape, and says so in a marker comment:
// `// contract: <the release that stopped using it>`.

// The schema of the first release: every migration up to this one. No release has been
// made before it, so nothing older needs to keep old nodes working.
const BASELINE = '20261203000010_password_must_change.ts';

const MIGRATIONS = path.join(ROOT, 'migrations');
const CONTRACT_MARKER = /^\s*\/\/\s*contract:\s*\S/m;

// knex schema-builder methods that take away or change what exists.
const DESTRUCTIVE_METHOD = /^(drop[A-Z]\w*|rename[A-Z]\w*|setNullable|alter)$/;
// The same in SQL (knex.raw), upper-cased with white space made single.
const DESTRUCTIVE_SQL: [RegExp, string][] = [
  [/\bDROP\s/, 'DROP'],
  [/\bRENAME\s/, 'RENAME'],
  // A statement, not a trigger's event (BEFORE UPDATE OR TRUNCATE).
  [/(^|;)\s*TRUNCATE\b/, 'TRUNCATE'],
  [/\bALTER\s+(COLUMN\s+)?[\w"]+\s+(SET\s+DATA\s+)?TYPE\b/, 'ALTER ... TYPE'],
  [/\bSET\s+NOT\s+NULL\b/, 'SET NOT NULL'],
];
// A constraint added to a table that exists: the old nodes' writes may break it.
const ADD_CONSTRAINT = /\bADD\s+(CONSTRAINT|UNIQUE|CHECK|FOREIGN\s+KEY|PRIMARY\s+KEY|EXCLUDE)\b/;
// knex's table-level constraints, called on the table builder itself (t.unique([...])),
// not on a new column (t.text('x').unique(), which old nodes never write).
const TABLE_CONSTRAINT = new Set(['unique', 'foreign', 'primary', 'check']);
// An ADD COLUMN clause (up to the next comma) that is NOT NULL without a DEFAULT.
const ADD_COLUMN = /\bADD\s+(?:COLUMN\s+)?(?!CONSTRAINT\b)[^,;]*/g;

type Node = { type: string; [key: string]: unknown };
const isNode = (value: unknown): value is Node => typeof value === 'object' && value !== null && typeof (value as Node).type === 'string';

function* walk(node: Node, parent?: Node): Generator<[Node, Node | undefined]> {
  yield [node, parent];
  for (const value of Object.values(node)) {
    for (const child of [value].flat()) if (isNode(child)) yield* walk(child, node);
  }
}

const propertyName = (node: Node) => (node.type === 'MemberExpression' && !node.computed && isNode(node.property) && node.property.type === 'Identifier' ? (node.property.name as string) : undefined);

// The methods of a call chain, outermost first: t.boolean('x').notNullable().defaultTo(false).
function chainMethods(call: Node): string[] {
  const names: string[] = [];
  for (let node: unknown = call; isNode(node) && node.type === 'CallExpression'; ) {
    const callee = node.callee as Node;
    const name = propertyName(callee);
    if (!name) break;
    names.push(name);
    node = callee.object;
  }
  return names;
}

function upFunction(program: Node): Node | undefined {
  for (const statement of program.body as Node[]) {
    const declaration = statement.type === 'ExportNamedDeclaration' ? (statement.declaration as Node | null) : undefined;
    if (declaration?.type === 'FunctionDeclaration' && (declaration.id as Node).name === 'up') return declaration;
  }
  return undefined;
}

// What the migration's up() takes away or changes, one line each; empty when it only adds.
function destructiveSteps(source: string): string[] {
  const up = upFunction(parseAst(source, { lang: 'ts' }) as unknown as Node);
  if (!up) return ['no exported function up()'];
  // Tables this migration creates: what it does to them next cannot break an old node.
  const created = new Set<string>();
  for (const [node] of walk(up)) {
    const first = node.type === 'CallExpression' ? (node.arguments as Node[])[0] : undefined;
    if (first?.type === 'Literal' && /^createTable/.test(propertyName(node.callee as Node) ?? '')) created.add(String(first.value).toUpperCase());
    const text = node.type === 'Literal' && typeof node.value === 'string' ? node.value : node.type === 'TemplateElement' ? (node.value as { cooked: string }).cooked : '';
    for (const [, name] of text.toUpperCase().matchAll(/\bCREATE\s+TABLE\s+(?:IF\s+NOT\s+EXISTS\s+)?"?(\w+)/g)) created.add(name!);
  }
  const found: string[] = [];
  for (const [node] of walk(up)) {
    const method = propertyName(node);
    if (method && DESTRUCTIVE_METHOD.test(method)) found.push(`${method}()`);
    // A column added to a table that exists: NOT NULL needs a default, or the old nodes'
    // inserts, which do not know the column, fail.
    const table = node.type === 'CallExpression' ? (node.arguments as Node[])[0] : undefined;
    const isNew = table?.type === 'Literal' && created.has(String(table.value).toUpperCase());
    if (node.type === 'CallExpression' && !isNew && ['alterTable', 'table'].includes(propertyName(node.callee as Node) ?? '')) {
      for (const [call, parent] of walk(node)) {
        const whole = call.type === 'CallExpression' && !(parent?.type === 'MemberExpression' && parent.object === call);
        const methods = whole ? chainMethods(call) : [];
        if (methods.includes('notNullable') && !methods.includes('defaultTo')) found.push('notNullable() without defaultTo() on an existing table');
        const callee = call.type === 'CallExpression' ? (call.callee as Node) : undefined;
        const constraint = callee ? propertyName(callee) : undefined;
        if (constraint && TABLE_CONSTRAINT.has(constraint) && isNode(callee!.object) && callee!.object.type === 'Identifier') found.push(`${constraint}() on an existing table`);
      }
    }
    const texts = node.type === 'Literal' && typeof node.value === 'string' ? [node.value] : node.type === 'TemplateElement' ? [(node.value as { cooked: string }).cooked] : [];
    for (const text of texts) {
      const sql = text.toUpperCase().replace(/\s+/g, ' ');
      for (const [pattern, label] of DESTRUCTIVE_SQL) if (pattern.test(sql)) found.push(label);
      const altered = /\bALTER\s+TABLE\s+(?:ONLY\s+)?(?:IF\s+EXISTS\s+)?"?(\w+)/.exec(sql)?.[1];
      if (altered && !created.has(altered) && ADD_CONSTRAINT.test(sql)) found.push('a constraint added to an existing table');
      for (const [clause] of sql.matchAll(ADD_COLUMN)) if (/\bNOT NULL\b/.test(clause) && !/\bDEFAULT\b/.test(clause)) found.push('ADD COLUMN ... NOT NULL without DEFAULT');
    }
  }
  return found;
}

const migration = (up: string, head = '') => `import type { Knex } from 'knex';\n${head}\nexport async function up(knex: Knex): Promise<void> {\n${up}\n}\n\nexport async function down(knex: Knex): Promise<void> {\n  await knex.schema.dropTable('x');\n}\n`;

describe('migrations after the baseline only add (README, "Upgrades")', () => {
  const files = fs.readdirSync(MIGRATIONS).filter((f) => f.endsWith('.ts')).sort();

  it('has its baseline among the migrations', () => {
    expect(files).toContain(BASELINE);
  });

  it('finds nothing destructive in a migration newer than the baseline, unless it is marked a contract step', () => {
    const newer = files.filter((f) => f > BASELINE);
    const breaches = newer.flatMap((file) => {
      const source = fs.readFileSync(path.join(MIGRATIONS, file), 'utf8');
      if (CONTRACT_MARKER.test(source)) return [];
      return destructiveSteps(source).map((step) => `${file}: ${step} (expand only; or mark it "// contract: <the release that stopped using it>")`);
    });
    expect(breaches).toEqual([]);
  });

  it('lets additive steps through: new tables, nullable or defaulted columns, indexes, functions', () => {
    const additive = [
      "  await knex.schema.createTable('t', (t) => {\n    t.text('name').notNullable();\n  });",
      "  await knex.schema.alterTable('accounts', (t) => {\n    t.text('nickname');\n    t.boolean('flag').notNullable().defaultTo(false);\n  });",
      "  await knex.raw('CREATE INDEX CONCURRENTLY accounts_nickname ON accounts (nickname)');",
      "  await knex.raw('ALTER TABLE accounts ADD COLUMN note text, ADD COLUMN seen boolean NOT NULL DEFAULT false');",
      "  await knex.raw(`CREATE FUNCTION f() RETURNS int LANGUAGE sql AS 'SELECT 1'`);\n  // a comment that says DROP TABLE changes nothing",
      "  await knex.raw('CREATE TRIGGER t_notify AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON t FOR EACH STATEMENT EXECUTE FUNCTION f()');",
      "  await knex.schema.createTable('t', (t) => {\n    t.text('a');\n    t.text('b');\n    t.unique(['a', 'b']);\n  });",
      "  await knex.schema.alterTable('accounts', (t) => {\n    t.integer('region_id').references('id').inTable('regions');\n    t.text('code').unique();\n  });",
      "  await knex.schema.createTable('one_row', (t) => {\n    t.boolean('one').primary();\n  });\n  await knex.raw('ALTER TABLE one_row ADD CONSTRAINT one_row_one CHECK (one)');",
    ];
    expect(additive.map((up) => destructiveSteps(migration(up)))).toEqual(additive.map(() => []));
  });

  it('catches what takes away or changes: drops, renames, type changes, new NOT NULL without a default, constraints on existing tables', () => {
    const cases: [string, string[]][] = [
      ["  await knex.schema.alterTable('accounts', (t) => t.dropColumn('email'));", ['dropColumn()']],
      ["  await knex.schema.dropTable('outbox');", ['dropTable()']],
      ["  await knex.schema.dropTableIfExists('outbox');", ['dropTableIfExists()']],
      ["  await knex.schema.alterTable('accounts', (t) => t.renameColumn('email', 'mail'));", ['renameColumn()']],
      ["  await knex.schema.renameTable('outbox', 'messages');", ['renameTable()']],
      ["  await knex.schema.alterTable('accounts', (t) => t.text('phone').notNullable().alter());", ['notNullable() without defaultTo() on an existing table', 'alter()']],
      ["  await knex.schema.alterTable('accounts', (t) => t.setNullable('email'));", ['setNullable()']],
      ["  await knex.schema.alterTable('accounts', (t) => t.dropNullable('email'));", ['dropNullable()']],
      ["  await knex.schema.alterTable('accounts', (t) => {\n    t.text('region').notNullable();\n  });", ['notNullable() without defaultTo() on an existing table']],
      ["  await knex.raw('drop index accounts_email');", ['DROP']],
      ["  await knex.raw(`ALTER TABLE accounts\n    RENAME COLUMN email TO mail`);", ['RENAME']],
      ["  await knex.raw('ALTER TABLE accounts ALTER COLUMN phone TYPE bigint USING phone::bigint');", ['ALTER ... TYPE']],
      ["  await knex.raw('ALTER TABLE accounts ALTER phone SET DATA TYPE bigint');", ['ALTER ... TYPE']],
      ["  await knex.raw('ALTER TABLE accounts ALTER COLUMN phone SET NOT NULL');", ['SET NOT NULL']],
      ["  await knex.raw('ALTER TABLE accounts ADD COLUMN region text NOT NULL');", ['ADD COLUMN ... NOT NULL without DEFAULT']],
      ["  await knex.raw('TRUNCATE outbox');", ['TRUNCATE']],
      ["  await knex.schema.alterTable('accounts', (t) => t.unique(['email']));", ['unique() on an existing table']],
      ["  await knex.schema.alterTable('memberships', (t) => {\n    t.foreign('account_id').references('accounts.id');\n  });", ['foreign() on an existing table']],
      ["  await knex.schema.alterTable('accounts', (t) => t.check('length(username) > 2'));", ['check() on an existing table']],
      ["  await knex.raw('ALTER TABLE accounts ADD CONSTRAINT accounts_email_key UNIQUE (email)');", ['a constraint added to an existing table']],
      ["  await knex.raw('alter table accounts add check (length(username) > 2)');", ['a constraint added to an existing table']],
    ];
    expect(cases.map(([up]) => destructiveSteps(migration(up)))).toEqual(cases.map(([, found]) => found));
  });

  it('takes the marker comment for a deliberate contract step', () => {
    const source = migration("  await knex.schema.alterTable('accounts', (t) => t.dropColumn('legacy_flag'));", '// contract: 0.3.0 stopped reading accounts.legacy_flag');
    expect(destructiveSteps(source)).toEqual(['dropColumn()']);
    expect(CONTRACT_MARKER.test(source)).toBe(true);
  });
});
