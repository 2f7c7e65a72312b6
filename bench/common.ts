// What the parent and the server processes agree on, and the little bit of process
// plumbing the servers share.
import readline from 'node:readline';

export type Credentials = { id: string; secret: string };

export type Person = { username: string; password: string };

// The parent makes this up once and hands the same one to every server, so all
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
// Meanwhile each line the parent writes on our stdin is a question, and `answer`'s
// reply goes back as one JSON line {"reply": ...} on stdout, in order.
export function serveUntilStopped(ready: Ready, close: () => Promise<void>, answer: (question: string) => unknown = () => null): void {
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
  readline.createInterface({ input: process.stdin }).on('line', (question) => {
    process.stdout.write(`${JSON.stringify({ reply: answer(question) ?? null })}\n`);
  }).on('close', stop);
  process.stdout.write(`${JSON.stringify(ready)}\n`);
}
