import type { Knex } from 'knex';

// Whom a person acts for in a sign-in session: an enterprise they belong to, or
// themselves (enterprise_id NULL). Keyed by the provider's session uid, which codes
// and tokens carry, so every window of the session sees the same choice.

export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('acting_enterprises', (t) => {
    t.text('session_uid').primary();
    t.uuid('account_id').notNullable().references('id').inTable('accounts').onDelete('CASCADE');
    t.uuid('enterprise_id').references('id').inTable('enterprises').onDelete('SET NULL');
    t.timestamp('chosen_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTable('acting_enterprises');
}
