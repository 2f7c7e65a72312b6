// How the server process uses memory, settled before anything else runs: main.ts
// imports this first. Measured with `BENCH_MIXED_SECONDS=10 npm run bench` (a mixed load
// with password sign-ins): resident memory stayed at about 355 MB after the load
// without these settings, about 170 MB with them.
//
// - glibc raises its mmap threshold once a large block is freed, so later argon2 blocks
//   (19 MiB each) come from per-thread arenas and stay with the process after the hash.
//   A fixed MALLOC_MMAP_THRESHOLD_ keeps them mmapped, handed back when freed;
//   MALLOC_ARENA_MAX bounds the arenas the hashing threads keep.
// - V8 grows the young generation to three 32 MiB semi-spaces under load and keeps
//   them; 8 MiB ones cost a little more garbage collection and much less memory.
//
// glibc reads its variables only when a process starts, so the process starts itself
// again, once, with them: process.execve keeps the pid, the arguments and the standard
// streams, so a supervisor sees one process. Values an operator set are kept as they are.

const SEMI_SPACE = '--max-semi-space-size';

if (process.platform === 'linux' && typeof process.execve === 'function' && process.env.MALLOC_MMAP_THRESHOLD_ === undefined) {
  const flags = [...process.execArgv, process.env.NODE_OPTIONS ?? ''].join(' ');
  const semiSpace = flags.includes(SEMI_SPACE) ? [] : [`${SEMI_SPACE}=8`];
  process.execve(process.execPath, [process.execPath, ...semiSpace, ...process.execArgv, ...process.argv.slice(1)], {
    ...process.env,
    MALLOC_MMAP_THRESHOLD_: '131072',
    MALLOC_ARENA_MAX: process.env.MALLOC_ARENA_MAX ?? '2',
  });
}
