import type { Knex } from 'knex';

// The first schema: persons, windows and their clients, the provider's artifacts,
// and the key store. Never edit a landed migration; add the next one.

export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('accounts', (t) => {
    t.uuid('id').primary().defaultTo(knex.raw('gen_random_uuid()'));
    t.text('username').notNullable();
    t.text('display_name').notNullable();
    t.text('phone');
    t.text('email');
    t.text('password_hash').notNullable();
    t.text('status').notNullable().defaultTo('active');
    t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.timestamp('updated_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
  });
  // Identifiers compare case-insensitively (email, username); phone is stored normalised.
  await knex.raw('CREATE UNIQUE INDEX accounts_username_key ON accounts (lower(username))');
  await knex.raw('CREATE UNIQUE INDEX accounts_email_key ON accounts (lower(email)) WHERE email IS NOT NULL');
  await knex.raw('CREATE UNIQUE INDEX accounts_phone_key ON accounts (phone) WHERE phone IS NOT NULL');
  await knex.raw("ALTER TABLE accounts ADD CONSTRAINT accounts_status_check CHECK (status IN ('active', 'disabled'))");

  await knex.schema.createTable('windows', (t) => {
    t.increments('id').primary();
    t.text('kind').notNullable();
    t.text('name').notNullable().unique();
    t.text('region');
    t.text('cluster');
    t.boolean('directly_administered').notNullable().defaultTo(false);
    t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.timestamp('disabled_at', { useTz: true });
  });
  await knex.raw("ALTER TABLE windows ADD CONSTRAINT windows_kind_check CHECK (kind IN ('province', 'comprehensive', 'industry', 'service'))");
  await knex.raw("ALTER TABLE windows ADD CONSTRAINT windows_region_check CHECK (region IS NULL OR region ~ '^[0-9]{6}$')");

  await knex.schema.createTable('clients', (t) => {
    t.text('client_id').primary();
    t.integer('window_id').notNullable().references('id').inTable('windows');
    t.text('name').notNullable();
    t.text('secret_digest');
    t.jsonb('metadata').notNullable();
    t.boolean('third_party').notNullable().defaultTo(false);
    t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.timestamp('disabled_at', { useTz: true });
    t.index(['window_id']);
  });

  await knex.schema.createTable('oidc_artifacts', (t) => {
    t.text('model').notNullable();
    t.text('id').notNullable();
    t.jsonb('payload').notNullable();
    t.text('grant_id');
    t.text('uid');
    t.text('user_code');
    t.timestamp('expires_at', { useTz: true });
    t.timestamp('consumed_at', { useTz: true });
    t.primary(['model', 'id']);
  });
  await knex.raw('CREATE INDEX oidc_artifacts_grant_id ON oidc_artifacts (grant_id) WHERE grant_id IS NOT NULL');
  await knex.raw('CREATE INDEX oidc_artifacts_uid ON oidc_artifacts (uid) WHERE uid IS NOT NULL');
  await knex.raw('CREATE INDEX oidc_artifacts_user_code ON oidc_artifacts (user_code) WHERE user_code IS NOT NULL');
  await knex.raw('CREATE INDEX oidc_artifacts_expires_at ON oidc_artifacts (expires_at) WHERE expires_at IS NOT NULL');

  await knex.schema.createTable('keys', (t) => {
    t.text('kid').primary();
    t.text('use').notNullable();
    t.text('alg').notNullable();
    t.jsonb('public_jwk');
    t.text('private_sealed').notNullable();
    t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.timestamp('retired_at', { useTz: true });
  });
  await knex.raw("ALTER TABLE keys ADD CONSTRAINT keys_use_check CHECK (use IN ('sig', 'cookie'))");
}

export async function down(knex: Knex): Promise<void> {
  for (const table of ['keys', 'oidc_artifacts', 'clients', 'windows', 'accounts']) await knex.schema.dropTable(table);
}
