import crypto from 'node:crypto';
import Router from '@koa/router';
import type { Context } from 'koa';
import * as oidc from 'openid-client';
import { createRemoteJWKSet, jwtVerify } from 'jose';
import { formBody } from '../http/forms.ts';
import { langOf } from '../http/i18n.ts';
import { render } from '../http/render.ts';
import { DEMO_SITES, demoClientId, demoClientSecret } from './seed.ts';

// Two window sites as real relying parties (openid-client), served by this process so
// a newcomer sees single sign-on and single logout. A real site keeps its sessions in
// its own store; the demo keeps them in memory (it runs on one node by design).

type RpSession = { claims: oidc.IDToken; idToken: string; sid: string | undefined; signedInAt: Date };

const BACKCHANNEL_EVENT = 'http://schemas.openid.net/event/backchannel-logout';

export function demoSites(issuer: string, masterKey: Buffer): { router: Router; links: Array<{ name: string; href: string }> } {
  const router = new Router({ prefix: '/demo' });
  const sessions = new Map<string, RpSession>();
  const configs = new Map<string, Promise<oidc.Configuration>>();
  const jwks = createRemoteJWKSet(new URL(`${issuer}/jwks`));

  // Discovery runs at first use: the provider is this same process, listening by then.
  const configFor = (slug: string) => {
    let config = configs.get(slug);
    if (!config) {
      config = oidc.discovery(new URL(issuer), demoClientId(slug), demoClientSecret(masterKey, slug), undefined, {
        execute: issuer.startsWith('http:') ? [oidc.allowInsecureRequests] : [],
      });
      config.catch(() => configs.delete(slug));
      configs.set(slug, config);
    }
    return config;
  };
  const site = (ctx: Context) => {
    const found = DEMO_SITES.find((s) => s.slug === ctx.params.slug);
    if (!found) ctx.throw(404);
    return { ...found, base: `${issuer}/demo/${found.slug}` };
  };
  const cookie = (s: { slug: string }) => ({ name: `demo_${s.slug}`, options: { path: `/demo/${s.slug}`, httpOnly: true, sameSite: 'lax' as const, signed: true } });
  // This browser session has asked the provider once already whether the person is
  // signed in there (prompt=none): asked again only in a new browser session, so a
  // person who is not signed in sees the page, not a loop of redirects.
  const checkedCookie = (s: { slug: string }) => `${cookie(s).name}_checked`;

  router.get('/:slug', async (ctx) => {
    const s = site(ctx);
    if (!ctx.path.endsWith('/')) return ctx.redirect(`/demo/${s.slug}/`);
    const c = cookie(s);
    const session = sessions.get(ctx.cookies.get(c.name, { signed: true }) ?? '');
    if (!session && !ctx.cookies.get(checkedCookie(s), { signed: true })) {
      ctx.cookies.set(checkedCookie(s), '1', c.options);
      return ctx.redirect(`/demo/${s.slug}/login?silent=1`);
    }
    render(ctx, 'demo', {
      site: s,
      others: DEMO_SITES.filter((o) => o.slug !== s.slug),
      session: session && { ...session, claimsJson: JSON.stringify(session.claims, null, 2) },
    });
  });

  router.get('/:slug/login', async (ctx) => {
    const s = site(ctx);
    const config = await configFor(s.slug);
    const verifier = oidc.randomPKCECodeVerifier();
    const state = oidc.randomState();
    const nonce = oidc.randomNonce();
    ctx.cookies.set(`${cookie(s).name}_auth`, JSON.stringify({ verifier, state, nonce }), { ...cookie(s).options, maxAge: 600_000 });
    ctx.redirect(
      oidc.buildAuthorizationUrl(config, {
        redirect_uri: `${s.base}/callback`,
        scope: 'openid profile email phone enterprise',
        code_challenge: await oidc.calculatePKCECodeChallenge(verifier),
        code_challenge_method: 'S256',
        state,
        nonce,
        ...(ctx.query.switch === '1' && { prompt: 'select_account' }),
        ...(ctx.query.silent === '1' && { prompt: 'none' }),
        ui_locales: langOf(ctx),
      }).href,
    );
  });

  router.get('/:slug/callback', async (ctx) => {
    const s = site(ctx);
    const c = cookie(s);
    const pending = JSON.parse(ctx.cookies.get(`${c.name}_auth`, { signed: true }) ?? 'null') as { verifier: string; state: string; nonce: string } | null;
    if (!pending) return ctx.redirect(`/demo/${s.slug}/`);
    // Not the answer to this browser's request: the request stays open for its own.
    if (ctx.query.state !== pending.state) return ctx.throw(400, 'this answer is not to this site’s sign-in (state does not match)');
    ctx.cookies.set(`${c.name}_auth`, null, c.options);
    // The provider's answer to a request that ended without a sign-in (login_required
    // to prompt=none, or the person cancelled): the page says 未登录.
    if (ctx.query.error !== undefined) return ctx.redirect(`/demo/${s.slug}/`);
    const current = new URL(`${s.base}/callback${ctx.search}`);
    const tokens = await oidc.authorizationCodeGrant(await configFor(s.slug), current, {
      pkceCodeVerifier: pending.verifier,
      expectedState: pending.state,
      expectedNonce: pending.nonce,
    });
    const claims = tokens.claims()!;
    const id = crypto.randomBytes(24).toString('base64url');
    sessions.set(id, { claims, idToken: tokens.id_token!, sid: claims.sid as string | undefined, signedInAt: new Date() });
    ctx.cookies.set(c.name, id, c.options);
    ctx.redirect(`/demo/${s.slug}/`);
  });

  router.get('/:slug/logout', async (ctx) => {
    const s = site(ctx);
    const c = cookie(s);
    const id = ctx.cookies.get(c.name, { signed: true }) ?? '';
    const session = sessions.get(id);
    sessions.delete(id);
    ctx.cookies.set(c.name, null, c.options);
    if (!session) return ctx.redirect(`/demo/${s.slug}/`);
    ctx.redirect(oidc.buildEndSessionUrl(await configFor(s.slug), { id_token_hint: session.idToken, post_logout_redirect_uri: `${s.base}/` }).href);
  });

  // The provider tells this site that a person signed out elsewhere: end the local
  // session of that provider session (sid).
  router.post('/:slug/backchannel-logout', formBody, async (ctx) => {
    const s = site(ctx);
    const token = (ctx.request.body as Record<string, unknown> | undefined)?.logout_token;
    try {
      if (typeof token !== 'string') throw new Error('missing logout_token');
      const { payload } = await jwtVerify(token, jwks, { issuer, audience: demoClientId(s.slug), maxTokenAge: '5m' });
      if (!(payload.events as Record<string, unknown> | undefined)?.[BACKCHANNEL_EVENT] || 'nonce' in payload) throw new Error('not a logout token');
      for (const [id, session] of sessions) {
        if ((payload.sid && session.sid === payload.sid) || (!payload.sid && session.claims.sub === payload.sub)) sessions.delete(id);
      }
      ctx.status = 200;
      ctx.set('Cache-Control', 'no-store');
      ctx.body = '';
    } catch {
      ctx.status = 400;
      ctx.body = { error: 'invalid_request' };
    }
  });

  return { router, links: DEMO_SITES.map((s) => ({ name: `/demo/${s.slug}/`, href: `/demo/${s.slug}/` })) };
}
