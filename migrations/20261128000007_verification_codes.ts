import type { Knex } from 'knex';

// One-time codes that prove a phone number or email address, and the development
// outbox where messages go when no SMTP server or SMS gateway is configured.

export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('verification_codes', (t) => {
    t.bigIncrements('id').primary();
    t.text('purpose').notNullable();
    t.text('destination').notNullable();
    t.text('code_hmac').notNullable();
    t.integer('attempts').notNullable().defaultTo(0);
    t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.timestamp('expires_at', { useTz: true }).notNullable();
    t.timestamp('consumed_at', { useTz: true });
    t.index(['purpose', 'destination', 'created_at']);
  });
  await knex.raw("ALTER TABLE verification_codes ADD CONSTRAINT verification_codes_purpose_check CHECK (purpose IN ('register', 'reset', 'contact'))");
  await knex.schema.createTable('outbox', (t) => {
    t.bigIncrements('id').primary();
    t.text('channel').notNullable();
    t.text('destination').notNullable();
    t.text('subject').notNullable();
    t.text('body').notNullable();
    t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTable('outbox');
  await knex.schema.dropTable('verification_codes');
}
