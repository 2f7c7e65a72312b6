import type { Knex } from 'knex';
import { chainedFields, chainHash, GENESIS } from '../src/audit/chain.ts';

// The audit trail becomes tamper-evident: every record carries the hash of the one
// before it and its own (src/audit/chain.ts, whose definition is frozen). Records
// already there are chained here, in id order. Purges leave an anchor, so the chain
// can start after them. Nothing may UPDATE or TRUNCATE a record, nor change an anchor.

export async function up(knex: Knex): Promise<void> {
  // The chain hashes `at` to the millisecond, as JavaScript has it.
  await knex.raw("UPDATE audit_events SET at = date_trunc('milliseconds', at)");
  await knex.schema.alterTable('audit_events', (t) => {
    t.text('prev_hash');
    t.text('hash');
  });
  let prev = GENESIS;
  let after: number | undefined;
  for (;;) {
    const q = knex('audit_events').orderBy('id').limit(1000);
    if (after !== undefined) q.where('id', '>', after);
    const rows = await q;
    if (rows.length === 0) break;
    const values = rows.map((r) => {
      const hash = chainHash(prev, chainedFields(r));
      const row = [r.id, prev, hash];
      prev = hash;
      return row;
    });
    await knex.raw(
      `UPDATE audit_events e SET prev_hash = v.prev_hash, hash = v.hash
       FROM (VALUES ${values.map(() => '(?::bigint, ?, ?)').join(', ')}) AS v(id, prev_hash, hash) WHERE e.id = v.id`,
      values.flat(),
    );
    after = Number(rows.at(-1).id);
  }
  await knex.raw('ALTER TABLE audit_events ALTER COLUMN prev_hash SET NOT NULL, ALTER COLUMN hash SET NOT NULL');
  await knex.raw("ALTER TABLE audit_events ADD CONSTRAINT audit_events_hash_check CHECK (hash ~ '^[0-9a-f]{64}$' AND prev_hash ~ '^[0-9a-f]{64}$')");

  await knex.schema.createTable('audit_anchors', (t) => {
    t.bigIncrements('id').primary();
    t.timestamp('at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.timestamp('purged_before', { useTz: true }).notNullable();
    t.bigInteger('last_event_id').notNullable();
    t.text('last_hash').notNullable();
    t.bigInteger('count').notNullable();
    t.text('by').notNullable();
    t.text('db_role').notNullable().defaultTo(knex.raw('current_user'));
  });

  await knex.raw(`
    CREATE FUNCTION audit_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      RAISE EXCEPTION '% of %: audit records are never changed', TG_OP, TG_TABLE_NAME;
    END $$`);
  // Statement triggers: refused even when no row matches.
  await knex.raw('CREATE TRIGGER audit_events_no_update BEFORE UPDATE OR TRUNCATE ON audit_events FOR EACH STATEMENT EXECUTE FUNCTION audit_refuse_change()');
  await knex.raw('CREATE TRIGGER audit_anchors_no_change BEFORE UPDATE OR DELETE OR TRUNCATE ON audit_anchors FOR EACH STATEMENT EXECUTE FUNCTION audit_refuse_change()');
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw('DROP TRIGGER audit_events_no_update ON audit_events');
  await knex.schema.dropTable('audit_anchors');
  await knex.raw('DROP FUNCTION audit_refuse_change()');
  await knex.schema.alterTable('audit_events', (t) => {
    t.dropChecks(['audit_events_hash_check']);
    t.dropColumn('prev_hash');
    t.dropColumn('hash');
  });
}
