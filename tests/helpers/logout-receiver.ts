import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { decodeJwt, type JWTPayload } from 'jose';

// A window's logout endpoints as a little HTTP server the test steers: back-channel
// (POST logout_token) and front-channel (GET with iss and sid) alike. It can answer
// 200, any other status, too slowly, with a redirect, or not at all (down: connections
// refused, on the same port until it is up again).

export type Answer = 'ok' | 'slow' | 'redirect' | number;

export type Received = { method: string; path: string; query: URLSearchParams; answered: number | 'late'; token?: JWTPayload };

// Longer than the provider's own timeout for outgoing requests (2.5 s).
const SLOW_MS = 4000;

export async function logoutReceiver() {
  let answer: Answer = 'ok';
  const received: Received[] = [];
  const server = http.createServer((req, res) => {
    let body = '';
    req.on('data', (chunk) => (body += chunk));
    req.on('end', () => {
      const url = new URL(req.url ?? '/', 'http://receiver');
      const raw = new URLSearchParams(body).get('logout_token');
      const entry: Received = { method: req.method ?? '', path: url.pathname, query: url.searchParams, answered: 200, ...(raw && { token: decodeJwt(raw) }) };
      received.push(entry);
      const now = answer;
      if (now === 'slow') {
        entry.answered = 'late';
        setTimeout(() => res.writeHead(200).end(), SLOW_MS).unref();
      } else if (now === 'redirect') {
        entry.answered = 302;
        res.writeHead(302, { location: '/elsewhere' }).end();
      } else {
        entry.answered = now === 'ok' ? 200 : now;
        res.writeHead(entry.answered, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' }).end('<!DOCTYPE html><title>window</title>');
      }
    });
  });
  let port = 0;
  const listen = () =>
    new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, '127.0.0.1', () => {
        port = (server.address() as AddressInfo).port;
        resolve();
      });
    });
  await listen();
  const origin = `http://127.0.0.1:${port}`;
  return {
    origin,
    backchannelUri: `${origin}/backchannel-logout`,
    frontchannelUri: `${origin}/frontchannel-logout?from=passport`,
    received,
    set answer(a: Answer) {
      answer = a;
    },
    // The logout tokens the window accepted (answered 200), for one sid.
    accepted: (sid: string) => received.filter((r) => r.token?.sid === sid && r.answered === 200),
    async down() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
    up: listen,
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => (server.listening ? server.close(() => resolve()) : resolve()));
    },
  };
}

export type LogoutReceiver = Awaited<ReturnType<typeof logoutReceiver>>;
