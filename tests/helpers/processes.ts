import { spawn, type ChildProcess } from 'node:child_process';
import net from 'node:net';
import { fileURLToPath } from 'node:url';

export const ROOT = fileURLToPath(new URL('../..', import.meta.url));

export async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

// Whether something accepts connections on this loopback port now.
export const portOpen = (port: number) =>
  new Promise<boolean>((resolve) => {
    const socket = net.connect(port, '127.0.0.1');
    socket.once('connect', () => (socket.destroy(), resolve(true)));
    socket.once('error', () => resolve(false));
  });

export type Node = { url: string; process: ChildProcess; output: () => string; stop(): Promise<void> };

// `node src/main.ts` as its own process, as an operator would run it; resolves when it
// says it is listening. `cwd`: another checkout of the code (an older release).
export async function startNode(env: Record<string, string>, options: { cwd?: string } = {}): Promise<Node> {
  const { started, ...node } = spawnNode(env, options);
  return { ...node, url: await started };
}

// The same, not waited for: `started` resolves with its URL once it says it is ready.
export function spawnNode(env: Record<string, string>, options: { cwd?: string } = {}): Omit<Node, 'url'> & { started: Promise<string> } {
  const child = spawn(process.execPath, ['src/main.ts'], {
    cwd: options.cwd ?? ROOT,
    env: { PATH: process.env.PATH ?? '', NODE_ENV: 'test', DEMO: 'false', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout.on('data', (d) => (output += d));
  child.stderr.on('data', (d) => (output += d));
  // After the exit and the last of its output.
  const closed = new Promise<void>((resolve) => child.once('close', () => resolve()));
  const started = new Promise<string>((resolve, reject) => {
    // A start on a busy machine can take a minute; one that hangs fails after three.
    const timer = setTimeout(() => reject(new Error(`node did not start:\n${output}`)), 180_000);
    child.stdout.on('data', () => {
      const m = /provider at (\S+)/.exec(output);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]!);
      }
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      reject(new Error(`node exited with ${code}:\n${output}`));
    });
  });
  return {
    started,
    process: child,
    output: () => output,
    stop: () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      return closed;
    },
  };
}

export type CliResult = { code: number; stdout: string; stderr: string };

export function runCli(args: string[], env: Record<string, string>, stdin?: string, options: { cwd?: string } = {}): Promise<CliResult> {
  const child = spawn(process.execPath, ['bin/sme-passport.js', ...args], {
    cwd: options.cwd ?? ROOT,
    env: { PATH: process.env.PATH ?? '', NODE_ENV: 'test', ...env },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d) => (stdout += d));
  child.stderr.on('data', (d) => (stderr += d));
  child.stdin.end(stdin ?? '');
  return new Promise((resolve) => child.on('close', (code) => resolve({ code: code ?? -1, stdout, stderr })));
}
