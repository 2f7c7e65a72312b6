// Parent side: the servers under measurement, each a Node process of its own, started
// from a script in this folder. Every child is killed when the parent exits, however
// it exits (and a child stops by itself when its stdin, a pipe from us, closes).
import { spawn, type ChildProcess } from 'node:child_process';
import readline from 'node:readline';
import { fileURLToPath } from 'node:url';
import type { Ready } from './common.ts';

export type Server = Ready & {
  name: string;
  pid: number;
  // One question on the child's stdin, its JSON reply from its stdout.
  ask(question: string): Promise<unknown>;
  stop(): Promise<void>;
};

const children = new Set<ChildProcess>();
process.on('exit', () => children.forEach((c) => c.kill('SIGKILL')));

export function killServers(): void {
  children.forEach((c) => c.kill('SIGKILL'));
}

// Starts `script` and waits for its one JSON "ready" line. Anything else it prints is
// passed on to our stderr, marked with its name.
export async function startServer(name: string, script: string, env: Record<string, string>): Promise<Server> {
  const child = spawn(process.execPath, [fileURLToPath(new URL(script, import.meta.url))], {
    env: { ...process.env, ...env },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  children.add(child);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  void exited.then(() => children.delete(child));
  readline.createInterface({ input: child.stderr! }).on('line', (line) => console.error(`[${name}] ${line}`));

  const waiting: Array<(reply: unknown) => void> = [];
  const ready = await new Promise<Ready>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${name} did not start within 120 s`)), 120_000);
    readline.createInterface({ input: child.stdout! }).on('line', (line) => {
      if (line.startsWith('{"reply":')) return waiting.shift()?.((JSON.parse(line) as { reply: unknown }).reply);
      if (!line.startsWith('{"url":')) return console.error(`[${name}] ${line}`);
      clearTimeout(timer);
      resolve(JSON.parse(line) as Ready);
    });
    child.once('error', reject);
    void exited.then(() => {
      clearTimeout(timer);
      reject(new Error(`${name} exited before it was ready`));
    });
  });
  return {
    name,
    // The servers listen on 127.0.0.1 only; ours names itself localhost. Talk to the address.
    url: ready.url.replace('//localhost:', '//127.0.0.1:'),
    clients: ready.clients,
    pid: child.pid!,
    ask(question) {
      return new Promise((resolve, reject) => {
        waiting.push(resolve);
        child.stdin!.write(`${question}\n`, (err) => err && reject(err));
      });
    },
    async stop() {
      child.kill('SIGTERM');
      const force = setTimeout(() => child.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(force);
    },
  };
}
