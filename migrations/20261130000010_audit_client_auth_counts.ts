import type { Knex } from 'knex';

// Failed and refused client authentications (token, introspection, revocation) are put
// on record per client, address and minute: counted here as they happen, and rolled up
// into the audit trail once the minute is over. '' is a client_id that names no client.

export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('audit_client_auth_counts', (t) => {
    t.timestamp('minute', { useTz: true }).notNullable();
    t.text('client_id').notNullable();
    t.text('ip').notNullable();
    t.integer('window_id');
    t.text('reason').notNullable();
    t.integer('count').notNullable();
    t.primary(['minute', 'client_id', 'ip', 'reason']);
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTable('audit_client_auth_counts');
}
