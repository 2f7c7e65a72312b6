import type { Knex } from 'knex';

// Rotating a client secret keeps the old one working for a grace period, so a window
// can deploy the new secret without an outage; and clients can now be edited.

export async function up(knex: Knex): Promise<void> {
  await knex.schema.alterTable('clients', (t) => {
    t.text('previous_secret_digest');
    t.timestamp('previous_secret_expires_at', { useTz: true });
    t.timestamp('secret_rotated_at', { useTz: true });
    t.timestamp('updated_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.alterTable('clients', (t) => {
    t.dropColumn('previous_secret_digest');
    t.dropColumn('previous_secret_expires_at');
    t.dropColumn('secret_rotated_at');
    t.dropColumn('updated_at');
  });
}
