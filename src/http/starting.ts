import type { IncomingMessage, ServerResponse } from 'node:http';
import { RETRY_AFTER_SECONDS } from './errors.ts';

// While the process starts (migrations, seeding, hashing the demo password, loading
// keys) its port may already be open: without an issuer set, the issuer is known only
// once the port is bound. Whatever arrives then is told to come back, at once, rather
// than left waiting: load balancers see /readyz say "starting", people a short page.
export function answerWhileStarting(req: IncomingMessage, res: ServerResponse): void {
  const path = (req.url ?? '/').split('?')[0];
  const probe = path === '/readyz' || path === '/healthz';
  res.statusCode = 503;
  res.setHeader('Retry-After', String(RETRY_AFTER_SECONDS));
  res.setHeader('Cache-Control', 'no-store');
  res.setHeader('X-Content-Type-Options', 'nosniff');
  if (probe || /\bjson\b/.test(req.headers.accept ?? '')) {
    res.setHeader('Content-Type', 'application/json; charset=utf-8');
    res.end(JSON.stringify(probe ? { status: 'starting' } : { error: 'temporarily_unavailable', error_description: 'the service is starting; try again in a few seconds' }));
    return;
  }
  res.setHeader('Content-Type', 'text/plain; charset=utf-8');
  res.end('服务正在启动，请几秒钟后重试。\nThe service is starting. Try again in a few seconds.\n');
}
