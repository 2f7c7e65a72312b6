// Paired, rotated rounds: every server is up the whole time; in each round each one is
// loaded in turn for the same few seconds, the order rotated from round to round, so
// a burst of other work on the machine lands on all of them alike and their ratio in
// one round is fair. Around each stretch of load: the server's statement count, its
// CPU time and (for ours on PostgreSQL) that of the PostgreSQL backends serving it.
import type { Stats } from './load.ts';
import { cpuBetween, cpuSnapshot } from './proc.ts';
import type { Server } from './servers.ts';
import type { StatementCounts } from './statements.ts';

export type Target = {
  server: Server;
  // Ours answers "statements"; bare has no database.
  countsStatements: boolean;
  // The PostgreSQL processes that serve it, if any.
  backends?: () => Promise<number[]>;
};

// One server's stretch of load in one round; the CPU and statements are per operation.
export type Stretch = {
  stats: Stats;
  cpuMs: number;
  backendCpuMs: number | undefined;
  statements: StatementCounts | undefined;
};

// rounds[r].get(server name)
export type Rounds = Array<Map<string, Stretch>>;

async function measure(target: Target, load: () => Promise<Stats>): Promise<Stretch> {
  const { server } = target;
  const statementsBefore = target.countsStatements ? ((await server.ask('statements')) as StatementCounts) : undefined;
  const backendsBefore = target.backends ? cpuSnapshot(await target.backends()) : undefined;
  const cpuBefore = cpuSnapshot([server.pid]);
  const stats = await load();
  const cpuAfter = cpuSnapshot([server.pid]);
  const backendsAfter = target.backends ? cpuSnapshot(await target.backends()) : undefined;
  const statementsAfter = target.countsStatements ? ((await server.ask('statements')) as StatementCounts) : undefined;
  const per = (n: number) => n / Math.max(1, stats.count);
  return {
    stats,
    cpuMs: per(cpuBetween(cpuBefore, cpuAfter)),
    // Not visible when PostgreSQL runs on another machine (or in another pid namespace).
    backendCpuMs: backendsBefore && backendsAfter?.size ? per(cpuBetween(backendsBefore, backendsAfter)) : undefined,
    statements:
      statementsBefore && statementsAfter
        ? {
            statements: per(statementsAfter.statements - statementsBefore.statements),
            transactionControl: per(statementsAfter.transactionControl - statementsBefore.transactionControl),
          }
        : undefined,
  };
}

export async function pairedRounds(
  label: string,
  targets: Target[],
  rounds: number,
  load: (server: Server) => Promise<Stats>,
): Promise<Rounds> {
  const results: Rounds = [];
  for (let r = 0; r < rounds; r++) {
    const order = targets.map((_, i) => targets[(i + r) % targets.length]!);
    const round = new Map<string, Stretch>();
    for (const target of order) round.set(target.server.name, await measure(target, () => load(target.server)));
    results.push(round);
    const line = order.map((t) => `${t.server.name} ${round.get(t.server.name)!.stats.perSecond.toFixed(1)}/s`).join(', ');
    console.error(`${label}, round ${r + 1}/${rounds}: ${line}`);
  }
  return results;
}

export function median(values: number[]): number {
  const sorted = values.filter((v) => Number.isFinite(v)).sort((x, y) => x - y);
  if (!sorted.length) return NaN;
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

export type Spread = { median: number; min: number; max: number };

export function spread(values: number[]): Spread {
  const finite = values.filter((v) => Number.isFinite(v));
  return { median: median(finite), min: Math.min(...finite), max: Math.max(...finite) };
}

// The ratio a/b in each round, then their median and range.
export const pairedRatio = (rounds: Rounds, a: string, b: string): Spread =>
  spread(rounds.map((round) => round.get(a)!.stats.perSecond / round.get(b)!.stats.perSecond));

// The median over the rounds of one server's figure.
export const medianOf = (rounds: Rounds, server: string, figure: (s: Stretch) => number | undefined): number =>
  median(rounds.map((round) => figure(round.get(server)!) ?? NaN));
