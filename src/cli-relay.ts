import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { z } from 'zod';

// An embedded database belongs to the process that opened it. While the server holds
// it, the command line sends its command over a Unix socket in the data folder and the
// server runs it on its own connection, so the two never open the files twice. The
// socket is as private as the data folder (mode 0600).

export const cliSocketPath = (dataDir: string) => path.join(dataDir, 'cli.sock');

export type CliOutcome = { code: number; stdout: string; stderr: string };

const request = z.strictObject({ argv: z.array(z.string()).max(200), stdin: z.string().max(1_000_000), cwd: z.string().startsWith('/') });
const outcome = z.strictObject({ code: z.number().int(), stdout: z.string(), stderr: z.string() });

function readLine(socket: net.Socket, limit = 4_000_000): Promise<string> {
  return new Promise((resolve, reject) => {
    let buffer = '';
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => {
      buffer += chunk;
      const end = buffer.indexOf('\n');
      if (end >= 0) resolve(buffer.slice(0, end));
      else if (buffer.length > limit) socket.destroy(new Error('message too long'));
    });
    socket.on('error', reject);
    socket.on('end', () => reject(new Error('the server closed the connection without answering')));
  });
}

export async function serveCliRelay(socketPath: string, run: (argv: string[], stdin: string, cwd: string) => Promise<CliOutcome>): Promise<{ close(): Promise<void> }> {
  fs.rmSync(socketPath, { force: true });
  const server = net.createServer((socket) => {
    readLine(socket)
      .then(async (line) => {
        const parsed = request.safeParse(JSON.parse(line));
        const answer = parsed.success ? await run(parsed.data.argv, parsed.data.stdin, parsed.data.cwd) : { code: 2, stdout: '', stderr: 'error: malformed command\n' };
        socket.end(`${JSON.stringify(answer)}\n`);
      })
      .catch(() => socket.destroy());
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(socketPath, resolve);
  });
  fs.chmodSync(socketPath, 0o600);
  return {
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        fs.rmSync(socketPath, { force: true });
      }),
  };
}

export async function relayToServer(socketPath: string, argv: string[], stdin: string, cwd: string): Promise<CliOutcome> {
  const socket = net.connect(socketPath);
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('error', reject);
  });
  socket.write(`${JSON.stringify({ argv, stdin, cwd })}\n`);
  return outcome.parse(JSON.parse(await readLine(socket)));
}
