// What the parent and the two server processes agree on, and the little bit of
// process plumbing both servers share.

export type Credentials = { id: string; secret: string };

export type Person = { username: string; password: string };

// The parent makes this up once and hands the same one to both servers, so both
// are measured with identical clients and people (one per concurrent hop loop).
export type Spec = {
  clients: { service: Credentials; a: Credentials; b: Credentials };
  redirectUri: string;
  people: Person[];
};

// The one JSON line a server prints on stdout once it is listening.
export type Ready = { url: string; clients: Spec['clients'] };

export function readSpec(): Spec {
  const raw = process.env.BENCH_SPEC;
  if (!raw) throw new Error('BENCH_SPEC is not set (these scripts are started by bench/run.ts)');
  return JSON.parse(raw) as Spec;
}

// Announce readiness, then live until the parent says stop (SIGTERM) or goes away
// (our stdin is a pipe from the parent: it closes when the parent dies, even by SIGKILL).
export function serveUntilStopped(ready: Ready, close: () => Promise<void>): void {
  let stopping = false;
  const stop = () => {
    if (stopping) return;
    stopping = true;
    close()
      .catch((err) => console.error('closing failed', err))
      .finally(() => process.exit(0));
  };
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
  process.stdin.on('end', stop).on('close', stop).resume();
  process.stdout.write(`${JSON.stringify(ready)}\n`);
}
