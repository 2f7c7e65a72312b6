import type { IncomingMessage, ServerResponse } from 'node:http';
import { RETRY_AFTER_SECONDS } from './errors.ts';

// While the process starts (migrations, seeding, hashing the demo password, loading
// keys) its port may already be open: without an issuer set, the issuer is known only
// once the port is bound. While it stops, it turns away what a balancer can send to
// another node (shutdown.ts). Either way whatever arrives is told to come back, at
// once, rather than left waiting: 503 with Retry-After, /readyz saying which, people a
// short page. Only the liveness probe says the process is up: an orchestrator that saw
// it fail during a long first start would kill the process before it could finish.
export type NotServing = 'starting' | 'stopping';

const pages: Record<NotServing, { description: string; text: string }> = {
  starting: {
    description: 'the service is starting; try again in a few seconds',
    text: '服务正在启动，请几秒钟后重试。\nThe service is starting. Try again in a few seconds.\n',
  },
  stopping: {
    description: 'this node is stopping; try again in a few seconds',
    text: '服务正在重启，请几秒钟后重试。\nThe service is restarting. Try again in a few seconds.\n',
  },
};

export function answerNotServing(phase: NotServing, req: IncomingMessage, res: ServerResponse): void {
  const path = (req.url ?? '/').split('?')[0];
  res.setHeader('Cache-Control', 'no-store');
  res.setHeader('X-Content-Type-Options', 'nosniff');
  if (path === '/healthz') {
    res.setHeader('Content-Type', 'application/json; charset=utf-8');
    res.end(JSON.stringify({ status: 'ok' }));
    return;
  }
  res.statusCode = 503;
  res.setHeader('Retry-After', String(RETRY_AFTER_SECONDS));
  if (path === '/readyz' || /\bjson\b/.test(req.headers.accept ?? '')) {
    res.setHeader('Content-Type', 'application/json; charset=utf-8');
    res.end(JSON.stringify(path === '/readyz' ? { status: phase } : { error: 'temporarily_unavailable', error_description: pages[phase].description }));
    return;
  }
  res.setHeader('Content-Type', 'text/plain; charset=utf-8');
  res.end(pages[phase].text);
}
