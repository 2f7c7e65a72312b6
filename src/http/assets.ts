import fs from 'node:fs';
import Router from '@koa/router';

// The scripts the pages load (script-src 'self'): a fixed set read once at start, so a
// request names a file only by a key of this map, never a path.
const ASSETS = new Map(
  ['auto-submit.js', 'frontchannel-logout.js'].map((name) => [name, fs.readFileSync(new URL(`../../assets/${name}`, import.meta.url))] as const),
);

export function assetRoutes(): Router {
  const router = new Router();
  router.get('/assets/:name', (ctx) => {
    const body = ASSETS.get(ctx.params.name!);
    if (!body) return;
    ctx.type = 'application/javascript; charset=utf-8';
    ctx.set('Cache-Control', 'public, max-age=3600');
    ctx.body = body;
  });
  return router;
}
