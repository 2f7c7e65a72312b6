// The one table `npm run bench` prints (markdown), with the figures issue 11 started
// from beside its targets.
import type { Stats } from './load.ts';
import { medianOf, pairedRatio, type Rounds, type Spread } from './rounds.ts';
import type { Scenario } from './scenarios.ts';
import type { ScenarioName } from './settings.ts';

export const BARE = 'bare';
export const PG = 'ours-pg';
export const PGLITE = 'ours-pglite';

export type ScenarioResult = { scenario: Scenario; rounds: Rounds };
export type Memory = Record<string, { idle: number; peak: number }>;
export type MixedResult = Record<string, Record<ScenarioName, Stats>>;
export type TrailResult = { rounds: Rounds; on: string; off: string };

// Issue 11's measurements before the work, and its targets.
const ISSUE_11: Record<ScenarioName, { target: string; before: string }> = {
  client_credentials: { target: '≥ 0.50; 1 statement', before: '0.05–0.15; 3 statements + BEGIN/COMMIT' },
  sso_hop: { target: '≥ 0.45; ≤ 8 statements', before: '0.12–0.21; 22 statements (19 at 16 in flight)' },
  sign_in: { target: '≤ 15 statements', before: 'argon2 bound; 35 statements' },
};
const PGLITE_BEFORE: Partial<Record<ScenarioName, string>> = { client_credentials: '×0.56', sso_hop: '×0.41' };

const ratio = (s: Spread) => `${s.median.toFixed(2)} (${s.min.toFixed(2)}–${s.max.toFixed(2)})`;
const rate = (n: number) => (n >= 100 ? n.toFixed(0) : n.toFixed(1));
const fixed = (n: number, digits: number) => (Number.isFinite(n) ? n.toFixed(digits) : 'n/a');

function scenarioRow({ scenario, rounds }: ScenarioResult): string[] {
  const { name, operation } = scenario;
  const perSecond = (server: string) => rate(medianOf(rounds, server, (s) => s.stats.perSecond));
  const statements = (server: string) => {
    const total = medianOf(rounds, server, (s) => s.statements?.statements);
    const control = medianOf(rounds, server, (s) => s.statements?.transactionControl);
    return `${fixed(total - control, 1)} + ${fixed(control, 1)} BEGIN/COMMIT`;
  };
  const cpu = (server: string) => fixed(medianOf(rounds, server, (s) => s.cpuMs), 2);
  const argon2 = name === 'sign_in' ? ' (argon2 bound)' : '';
  return [
    `${name} ${operation}s/s, ours on PostgreSQL / bare${argon2}`,
    ratio(pairedRatio(rounds, PG, BARE)),
    `${ISSUE_11[name].target} / ${ISSUE_11[name].before}`,
    `ours ${perSecond(PG)} · bare ${perSecond(BARE)} · PGlite ${perSecond(PGLITE)}`,
    `PG ${statements(PG)} · PGlite ${statements(PGLITE)}`,
    `ours ${cpu(PG)} + PG backends ${fixed(medianOf(rounds, PG, (s) => s.backendCpuMs), 2)} · bare ${cpu(BARE)} · PGlite ${cpu(PGLITE)}`,
  ];
}

function pgliteRow({ scenario, rounds }: ScenarioResult): string[] {
  const before = PGLITE_BEFORE[scenario.name];
  return [`${scenario.name}, PGlite / PostgreSQL mode`, ratio(pairedRatio(rounds, PGLITE, PG)), before ? `≥ 0.70 / ${before}` : '—', '', '', ''];
}

function memoryRow(memory: Memory): string[] {
  const mb = (server: string) => `${memory[server]!.idle.toFixed(0)} / ${memory[server]!.peak.toFixed(0)}`;
  return ['RSS idle / peak under the bench, MB', '', '≤ 200 peak, PostgreSQL mode / 250–435', `ours ${mb(PG)} · bare ${mb(BARE)} · PGlite ${mb(PGLITE)}`, '', ''];
}

function mixedRow(mixed: MixedResult, seconds: number): string[] {
  const of = (server: string) => {
    const m = mixed[server]!;
    return `${rate(m.client_credentials.perSecond)}/${rate(m.sso_hop.perSecond)}/${rate(m.sign_in.perSecond)}`;
  };
  return [
    `mixed load, ${seconds} s each: tokens/hops/sign-ins per s, all at once`,
    (mixed[PG]!.client_credentials.perSecond / mixed[BARE]!.client_credentials.perSecond).toFixed(2) + ' (tokens, one pass)',
    '—',
    `ours ${of(PG)} · bare ${of(BARE)} · PGlite ${of(PGLITE)}`,
    '',
    '',
  ];
}

function trailRow({ rounds, on, off }: TrailResult): string[] {
  const perSecond = (server: string) => rate(medianOf(rounds, server, (s) => s.stats.perSecond));
  return ['sign-ins/s, audit trail on / off (ours on PostgreSQL)', ratio(pairedRatio(rounds, on, off)), '—', `on ${perSecond(on)} · off ${perSecond(off)}`, '', ''];
}

export function benchTable(results: ScenarioResult[], memory: Memory, mixed: { result: MixedResult; seconds: number } | undefined, trail: TrailResult | undefined): string {
  const header = ['figure', 'ours/bare median (spread)', 'target / before issue 11', 'absolute ops/s (median)', 'statements per operation', 'CPU ms per operation'];
  const rows = [
    ...results.map(scenarioRow),
    ...results.map(pgliteRow),
    memoryRow(memory),
    ...(mixed ? [mixedRow(mixed.result, mixed.seconds)] : []),
    ...(trail ? [trailRow(trail)] : []),
  ];
  return [header, header.map(() => '---'), ...rows].map((cells) => `| ${cells.join(' | ')} |`).join('\n');
}
