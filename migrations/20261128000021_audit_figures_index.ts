import type { Knex } from 'knex';

// The windows' service figures read one kind of event, of one window, in one year.

export async function up(knex: Knex): Promise<void> {
  await knex.raw('CREATE INDEX audit_events_figures ON audit_events (event, window_id, at)');
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw('DROP INDEX audit_events_figures');
}
