import type { Knex } from 'knex';

// What a person sees of their sign-in sessions (device, address, when), which the
// provider's own session record does not keep. Keyed by the session uid.

export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('session_details', (t) => {
    t.text('session_uid').primary();
    t.uuid('account_id').notNullable().references('id').inTable('accounts').onDelete('CASCADE');
    t.text('ip');
    t.text('user_agent');
    t.timestamp('signed_in_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.timestamp('last_seen_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.index(['account_id']);
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTable('session_details');
}
