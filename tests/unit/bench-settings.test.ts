import { describe, expect, it } from 'vitest';
import { readSettings, SettingsError } from '../../bench/settings.ts';

describe('npm run bench settings', () => {
  it('has defaults that take a few minutes: 5 rounds of 3 s, no mixed load, nothing at scale', () => {
    expect(readSettings({})).toMatchObject({ databaseName: undefined, serverUrl: 'postgres://postgres@127.0.0.1:5432/postgres', rounds: 5, roundSeconds: 3, mixedSeconds: 0, preparedStatements: true, scale: undefined });
  });

  it('sends ours its statements unnamed with BENCH_PREPARED_STATEMENTS=false, and takes nothing else there', () => {
    expect(readSettings({ BENCH_PREPARED_STATEMENTS: 'false' }).preparedStatements).toBe(false);
    expect(() => readSettings({ BENCH_PREPARED_STATEMENTS: 'no' })).toThrow(/BENCH_PREPARED_STATEMENTS: must be true or false \(got "no"\)/);
  });

  it('creates its database on the server of DATABASE_URL', () => {
    expect(readSettings({ DATABASE_URL: 'postgres://bench@db.example:6543/app', BENCH_DATABASE: 'my_bench' })).toMatchObject({ serverUrl: 'postgres://bench@db.example:6543/postgres', databaseName: 'my_bench' });
  });

  it('refuses a bad value, and an unknown BENCH_ variable, naming each', () => {
    const attempt = () => readSettings({ BENCH_ROUNDS: 'abc', BENCH_SCENARIOS: 'client_credentials,teleport', BENCH_DATABASE: 'Robert"); DROP', BENCH_SECONDS: '10' });
    expect(attempt).toThrow(SettingsError);
    expect(attempt).toThrow(/BENCH_ROUNDS: must be a number \(got "abc"\)/);
    expect(attempt).toThrow(/BENCH_SCENARIOS: /);
    expect(attempt).toThrow(/BENCH_DATABASE: must be a plain PostgreSQL name/);
    expect(attempt).toThrow(/BENCH_SECONDS: unknown/);
  });
});
