import http from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer, type TestServer } from '../helpers/server.ts';

// Defect 7 of issue 10: the language link was built from the request path, so
// `GET //evil.example/x` answered a page linking to `//evil.example/x?lang=en`, another
// site. Every link and redirect we build from a request stays on this origin, whatever
// the path looks like.

let server: TestServer;

beforeAll(async () => {
  server = await startTestServer();
});

afterAll(async () => {
  await server?.close();
});

// The request exactly as written (fetch and URL would normalise the tricks away).
function rawGet(path: string): Promise<{ status: number; location: string | undefined; body: string }> {
  const { hostname, port } = new URL(server.url);
  return new Promise((resolve, reject) => {
    const req = http.get({ hostname, port, path, headers: { accept: 'text/html' } }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk) => (body += chunk));
      res.on('end', () => resolve({ status: res.statusCode!, location: res.headers.location, body }));
    });
    req.on('error', reject);
  });
}

const decode = (s: string) => s.replace(/&#x2F;/g, '/').replace(/&#39;/g, "'").replace(/&quot;/g, '"').replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&amp;/g, '&');
const references = (html: string) => [...html.matchAll(/\s(?:href|action|src|formaction)="([^"]*)"/g)].map((m) => decode(m[1]!));

const TRICKS = [
  '//evil.example/x',
  '//evil.example',
  '///evil.example/x',
  '/\\evil.example',
  '/\\/evil.example/x',
  '/\\\\evil.example',
  '/%2F%2Fevil.example',
  '/%2F/evil.example',
  '/%5Cevil.example',
  '//evil.example/x?lang=en',
  '//evil.example/x?next=//evil.example',
  '/.//evil.example',
  '//evil.example@127.0.0.1/x',
  '/https://evil.example/x',
  '//evil.example/interaction/abc',
  '//evil.example/account',
  '//evil.example/admin/',
];

describe('links and redirects built from the request path', () => {
  it.each(TRICKS)('stay on this origin for GET %s', async (path) => {
    const answer = await rawGet(path);
    expect(answer.status).toBeLessThan(500);
    // Where a browser would go: relative to the page's own URL, as it sees it.
    const page = new URL(`${server.url}${path.replace(/\\/g, '/')}`);
    expect(page.origin).toBe(server.url);
    const targets = [...references(answer.body), ...(answer.location ? [answer.location] : [])];
    expect(targets.length).toBeGreaterThan(0);
    for (const target of targets) {
      const resolved = new URL(target, page);
      expect({ target, origin: resolved.origin }).toEqual({ target, origin: server.url });
    }
  });
});
