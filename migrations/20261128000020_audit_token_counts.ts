import type { Knex } from 'knex';

// Tokens are put on record per client per minute: counted here as they are issued or
// revoked, and rolled up into the audit trail once the minute is over.

export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('audit_token_counts', (t) => {
    t.timestamp('minute', { useTz: true }).notNullable();
    t.text('client_id').notNullable();
    t.integer('window_id');
    t.text('action').notNullable();
    t.text('kind').notNullable();
    t.integer('count').notNullable();
    t.primary(['minute', 'client_id', 'action', 'kind']);
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTable('audit_token_counts');
}
