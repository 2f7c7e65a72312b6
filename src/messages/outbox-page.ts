import Router from '@koa/router';
import type { Db } from '../db/connect.ts';
import { render } from '../http/render.ts';

// /dev/outbox: what would have been sent, for people trying the system without an SMTP
// server or SMS gateway. Mounted only outside production.
export function outboxPage(db: Db): Router {
  const router = new Router();
  router.get('/dev/outbox', async (ctx) => {
    render(ctx, 'outbox', { messages: await db('outbox').orderBy('id', 'desc').limit(50) });
  });
  return router;
}
