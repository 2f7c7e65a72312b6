import type { Knex } from 'knex';

// The audit trail: one row per event, only ever appended. The tamper-evident chain and
// retention come with the audit issue; administrator changes are recorded from here on.

export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('audit_events', (t) => {
    t.bigIncrements('id').primary();
    t.timestamp('at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.text('actor_type').notNullable();
    t.text('actor_id');
    t.text('actor_ip');
    t.uuid('enterprise_id');
    t.integer('window_id');
    t.text('event').notNullable();
    t.text('target');
    t.text('outcome').notNullable();
    t.text('reason');
    t.jsonb('before');
    t.jsonb('after');
    t.index(['at']);
  });
  await knex.raw("ALTER TABLE audit_events ADD CONSTRAINT audit_events_actor_check CHECK (actor_type IN ('account', 'client', 'system'))");
  await knex.raw("ALTER TABLE audit_events ADD CONSTRAINT audit_events_outcome_check CHECK (outcome IN ('success', 'failure'))");
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTable('audit_events');
}
