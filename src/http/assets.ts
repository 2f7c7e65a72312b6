import fs from 'node:fs';
import Router from '@koa/router';
import type { Logo } from './logo.ts';

// The scripts the pages load (script-src 'self'): a fixed set read once at start, so a
// request names a file only by a key of this map, never a path.
const ASSETS = new Map(
  ['auto-submit.js', 'frontchannel-logout.js'].map((name) => [name, fs.readFileSync(new URL(`../../assets/${name}`, import.meta.url))] as const),
);

// An SVG opened on its own is a document that could run script: it gets a policy that
// runs none and loads nothing. In the pages' <img> it never runs script anyway.
const IMAGE_POLICY = "default-src 'none'; style-src 'unsafe-inline'; sandbox";

export function assetRoutes(logo?: Logo): Router {
  const router = new Router();
  if (logo) {
    router.get(logo.href, (ctx) => {
      ctx.type = logo.type;
      // The name carries the logo's digest: another logo is another name.
      ctx.set('Cache-Control', 'public, max-age=31536000, immutable');
      ctx.set('Content-Security-Policy', IMAGE_POLICY);
      ctx.body = logo.body;
    });
  }
  router.get('/assets/:name', (ctx) => {
    const body = ASSETS.get(ctx.params.name!);
    if (!body) return;
    ctx.type = 'application/javascript; charset=utf-8';
    ctx.set('Cache-Control', 'public, max-age=3600');
    ctx.body = body;
  });
  return router;
}
