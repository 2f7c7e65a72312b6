import type { Context, Next } from 'koa';
import type Provider from 'oidc-provider';
import type { KoaContextWithOIDC } from 'oidc-provider';
import { pagePolicyFraming } from '../http/errors.ts';
import { render } from '../http/render.ts';
import { sessionSids } from './internals.ts';

// OpenID Connect Front-Channel Logout 1.0 (oidc-provider 9 no longer has it): when a
// browser signs out at the end-session endpoint, the page it is shown loads the
// frontchannel_logout_uri of every window that sign-out ended, with iss and sid, in
// hidden frames, then goes on to where the library would have sent it (the window's
// post_logout_redirect_uri, or the signed-out page): by a script of our own once the
// frames have loaded or after a few seconds (assets/frontchannel-logout.js), or by a
// link without script.

// Client metadata the provider keeps on each client (extraClientMetadata).
export const FRONTCHANNEL_METADATA = ['frontchannel_logout_uri', 'frontchannel_logout_session_required'];

// Served with the other page scripts (http/assets.ts).
const SCRIPT_PATH = '/assets/frontchannel-logout.js';

// The frame's address: the registered URI with iss and sid added to its query.
function frameSrc(uri: string, issuer: string, sid: string | undefined): string {
  const url = new URL(uri);
  if (sid !== undefined) {
    url.searchParams.set('iss', issuer);
    url.searchParams.set('sid', sid);
  }
  return url.href;
}

type FrontchannelClient = { clientId: string; frontchannel_logout_uri?: unknown; frontchannel_logout_session_required?: unknown };

// A provider middleware around the end-session confirmation: the session's windows and
// sids are read before the library ends it; those it ended are the ones gone after.
export function frontchannelLogoutPage(provider: Provider, routeOf: (method: string, path: string) => string | undefined) {
  return async (ctx: KoaContextWithOIDC, next: Next): Promise<void> => {
    if (routeOf(ctx.method, ctx.path) !== 'end_session_confirm') return next();
    const before = await sessionSids(provider, ctx as unknown as Context);
    await next();
    const next_ = ctx.response.get('Location');
    if (ctx.status !== 303 || !next_ || before.size === 0) return;
    const session = ctx.oidc.session as unknown as { destroyed?: boolean; authorizations?: Record<string, unknown> } | undefined;
    const remaining = session && !session.destroyed ? (session.authorizations ?? {}) : {};
    const frames: string[] = [];
    const origins = new Set<string>();
    for (const [clientId, sid] of before) {
      if (Object.hasOwn(remaining, clientId)) continue;
      const client = (await provider.Client.find(clientId).catch(() => undefined)) as FrontchannelClient | undefined;
      const uri = client?.frontchannel_logout_uri;
      if (typeof uri !== 'string') continue;
      frames.push(frameSrc(uri, provider.issuer, client!.frontchannel_logout_session_required === false ? undefined : sid));
      origins.add(new URL(uri).origin);
    }
    if (frames.length === 0) return;
    ctx.remove('Location');
    render(ctx as unknown as Context, 'frontchannel-logout', { frames, next: next_, script: SCRIPT_PATH });
    ctx.set('Content-Security-Policy', pagePolicyFraming([...origins]));
  };
}
