import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['tests/**/*.test.ts'],
    globalSetup: ['tests/helpers/global-setup.ts'],
    pool: 'forks',
    maxWorkers: 2,
    // Test files share a worker's loaded modules (about a third of a file's time was
    // importing them again). What the server keeps in a module is keyed by its database
    // (caches, counts, the audit queue), so files do not see each other's state.
    isolate: false,
    // Ceilings, reached only by a test that hangs: a busy machine (load 10 and more on
    // two cores) makes a passing test many times slower, never a failing one.
    testTimeout: 120_000,
    hookTimeout: 180_000,
    // expect.poll (the browser tests) waits as long as `eventually` (tests/helpers/wait.ts),
    // not vitest's 1 s.
    expect: { poll: { timeout: 60_000 } },
  },
});
