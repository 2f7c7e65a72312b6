import type { Knex } from 'knex';

// Back-channel logout notifications wait here until the window answers
// (src/oidc/logout-deliveries.ts), and every attempt to deliver one is kept beside it.

export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('logout_deliveries', (t) => {
    t.bigIncrements('id');
    // No foreign key: a client deleted after the sign-out leaves its deliveries on record.
    t.text('client_id').notNullable();
    t.integer('window_id');
    t.text('account_id').notNullable();
    t.text('sid').notNullable();
    t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    // Also the end of a node's lease while it delivers (claim).
    t.timestamp('next_attempt_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.uuid('claim');
    t.integer('attempts').notNullable().defaultTo(0);
    t.text('state').notNullable().defaultTo('pending');
    t.timestamp('delivered_at', { useTz: true });
    t.timestamp('abandoned_at', { useTz: true });
    t.text('last_error');
  });
  await knex.raw("ALTER TABLE logout_deliveries ADD CONSTRAINT logout_deliveries_state CHECK (state IN ('pending', 'delivered', 'abandoned'))");
  await knex.raw("CREATE INDEX logout_deliveries_due ON logout_deliveries (next_attempt_at) WHERE state = 'pending'");
  await knex.raw('CREATE INDEX logout_deliveries_window ON logout_deliveries (window_id, created_at)');
  await knex.raw('CREATE INDEX logout_deliveries_created ON logout_deliveries (created_at)');
  await knex.schema.createTable('logout_delivery_attempts', (t) => {
    t.bigIncrements('id');
    t.bigInteger('delivery_id').notNullable().references('logout_deliveries.id').onDelete('CASCADE');
    t.timestamp('at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.text('outcome').notNullable();
    t.integer('http_status');
    t.text('error');
    t.integer('duration_ms').notNullable();
    t.index(['delivery_id']);
  });
  await knex.raw("ALTER TABLE logout_delivery_attempts ADD CONSTRAINT logout_delivery_attempts_outcome CHECK (outcome IN ('delivered', 'failed'))");
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTable('logout_delivery_attempts');
  await knex.schema.dropTable('logout_deliveries');
}
