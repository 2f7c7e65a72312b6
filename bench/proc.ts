// What Linux says about a process in /proc: CPU time used and resident memory.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';

// utime and stime are counted in clock ticks (100 a second on most Linux systems).
const TICKS_PER_SECOND = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;

// User plus system CPU time of a process so far, in ms; undefined once it is gone or
// when it is not ours to see (a PostgreSQL on another machine).
export function cpuMs(pid: number): number | undefined {
  let stat: string;
  try {
    stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined;
  }
  // The command name, in parentheses, may hold spaces: count fields after its end.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return ((Number(fields[11]) + Number(fields[12])) * 1000) / TICKS_PER_SECOND;
}

export type CpuSnapshot = Map<number, number>;

export function cpuSnapshot(pids: number[]): CpuSnapshot {
  const snapshot: CpuSnapshot = new Map();
  for (const pid of pids) {
    const ms = cpuMs(pid);
    if (ms !== undefined) snapshot.set(pid, ms);
  }
  return snapshot;
}

// CPU used between two snapshots by the processes alive at the second: one that
// started in between counts whole, one that ended in between is missed.
export function cpuBetween(before: CpuSnapshot, after: CpuSnapshot): number {
  let ms = 0;
  for (const [pid, now] of after) ms += now - (before.get(pid) ?? 0);
  return ms;
}

// VmRSS (resident now) and VmHWM (highest resident since start or the last resetPeak), in MB.
export function residentMb(pid: number): { rss: number; peak: number } {
  const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN);
  return { rss: kb('VmRSS') / 1024, peak: kb('VmHWM') / 1024 };
}

// Starts VmHWM again from the current resident size, so the peak is the load's, not start-up's.
export function resetPeak(pid: number): void {
  fs.writeFileSync(`/proc/${pid}/clear_refs`, '5');
}

// How busy the CPUs are over `ms`: anything else running (tests, builds) takes cores
// from the servers and PostgreSQL, and the numbers are worth less.
export async function cpuBusyPercent(ms: number): Promise<number> {
  const total = () => os.cpus().reduce((t, c) => ({ idle: t.idle + c.times.idle, all: t.all + Object.values(c.times).reduce((x, y) => x + y, 0) }), { idle: 0, all: 0 });
  const before = total();
  await new Promise((resolve) => setTimeout(resolve, ms));
  const after = total();
  return 100 * (1 - (after.idle - before.idle) / (after.all - before.all || 1));
}
