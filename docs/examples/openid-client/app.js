// A window site on Node.js with openid-client 6 and node:http, no framework.
// Configuration from the environment:
//   ISSUER         e.g. https://passport.example.gov.cn
//   CLIENT_ID      CLIENT_SECRET   (from `sme-passport client create`)
//   BASE_URL       this site's own address, e.g. https://www.example-window.cn
//   PORT           where to listen (default 8080)
//   SCOPE          default "openid profile email phone enterprise"
//   API_IDENTIFIER optional: an API of the window (the guide's section 7), whose address it
//                  is too; the access token is then a JWT for it (add its scope to SCOPE,
//                  e.g. "... orders:read"), and /orders calls it
// Registered for it: redirect URI BASE_URL/callback, post-logout redirect URI BASE_URL/,
// back-channel logout URI BASE_URL/backchannel-logout; if this site and the provider are
// same-site, front-channel logout URI BASE_URL/frontchannel-logout.
import crypto from 'node:crypto';
import http from 'node:http';
import * as client from 'openid-client';
import * as jose from 'jose';

const { ISSUER, CLIENT_ID, CLIENT_SECRET, BASE_URL, PORT = '8080', API_IDENTIFIER } = process.env;
const SCOPE = process.env.SCOPE ?? 'openid profile email phone enterprise';
// RFC 8707: which API the access token is for, at the authorization and the token endpoint.
const resource = API_IDENTIFIER ? { resource: API_IDENTIFIER } : {};
const issuer = new URL(ISSUER);

// Plain http only for a provider on this machine (development and tests).
const config = await client.discovery(issuer, CLIENT_ID, CLIENT_SECRET, undefined, {
  execute: issuer.protocol === 'http:' ? [client.allowInsecureRequests] : [],
});
const jwks = jose.createRemoteJWKSet(new URL(config.serverMetadata().jwks_uri));

// Sessions in memory: enough for one process. A real site keeps them in its session
// store (Redis, a database) so that the back-channel can reach every node.
const sessions = new Map(); // session id -> { claims, tokens, sid } or { pending }

function sessionOf(req) {
  const id = /(?:^|;\s*)site_session=([\w-]+)/.exec(req.headers.cookie ?? '')?.[1];
  return id && sessions.has(id) ? { id, ...sessions.get(id) } : undefined;
}

function newSession(res, value) {
  const id = crypto.randomUUID();
  sessions.set(id, value);
  res.setHeader('set-cookie', `site_session=${id}; Path=/; HttpOnly; SameSite=Lax`);
  return id;
}

const send = (res, status, body, headers = {}) => res.writeHead(status, headers).end(body);
const redirect = (res, location) => send(res, 302, '', { location });

async function handle(req, res) {
  const url = new URL(req.url, BASE_URL);

  if (url.pathname === '/login') {
    const pending = {
      codeVerifier: client.randomPKCECodeVerifier(),
      state: client.randomState(),
      nonce: client.randomNonce(),
    };
    newSession(res, { pending });
    const parameters = {
      redirect_uri: `${BASE_URL}/callback`,
      scope: SCOPE,
      code_challenge: await client.calculatePKCECodeChallenge(pending.codeVerifier),
      code_challenge_method: 'S256',
      state: pending.state,
      nonce: pending.nonce,
      ...resource,
    };
    return redirect(res, client.buildAuthorizationUrl(config, parameters).href);
  }

  if (url.pathname === '/callback') {
    const session = sessionOf(req);
    if (!session?.pending) return send(res, 400, 'no sign-in in progress');
    const checks = {
      pkceCodeVerifier: session.pending.codeVerifier,
      expectedState: session.pending.state,
      expectedNonce: session.pending.nonce,
    };
    const tokens = await client.authorizationCodeGrant(config, url, checks, resource);
    const claims = tokens.claims();
    sessions.set(session.id, { claims, tokens, sid: claims.sid });
    return redirect(res, '/me');
  }

  if (url.pathname === '/me') {
    const session = sessionOf(req);
    if (!session?.claims) return send(res, 401, 'not signed in');
    return send(res, 200, JSON.stringify(session.claims), { 'content-type': 'application/json' });
  }

  if (url.pathname === '/refresh' && req.method === 'POST') {
    const session = sessionOf(req);
    if (!session?.tokens?.refresh_token) return send(res, 401, 'no refresh token');
    try {
      const tokens = await client.refreshTokenGrant(config, session.tokens.refresh_token, resource);
      sessions.set(session.id, { ...session, tokens });
      return send(res, 200, JSON.stringify({ expires_in: tokens.expires_in }), { 'content-type': 'application/json' });
    } catch (err) {
      if (!(err instanceof client.ResponseBodyError && err.error === 'invalid_grant')) throw err;
      // The refresh token is bound to the person's sign-in session at the provider, which
      // has ended (signed out at another window, timed out, account disabled): so does this one.
      sessions.delete(session.id);
      return send(res, 401, 'signed out at the provider');
    }
  }

  // The window's API, called with the person's access token (a JWT for it).
  if (url.pathname === '/orders' && API_IDENTIFIER) {
    const session = sessionOf(req);
    if (!session?.tokens) return send(res, 401, 'not signed in');
    const answer = await fetch(`${API_IDENTIFIER}/orders`, { headers: { authorization: `Bearer ${session.tokens.access_token}` } });
    return send(res, answer.status, await answer.text(), { 'content-type': 'application/json' });
  }

  // Front-channel logout: the provider's sign-out page loads this in a hidden frame, with
  // this site's session cookie only where the site and the provider are same-site.
  if (url.pathname === '/frontchannel-logout') {
    const session = sessionOf(req);
    const sid = url.searchParams.get('sid');
    if (session?.claims && sid && session.sid === sid && url.searchParams.get('iss') === config.serverMetadata().issuer) sessions.delete(session.id);
    return send(res, 200, '', { 'cache-control': 'no-store' });
  }

  if (url.pathname === '/logout') {
    const session = sessionOf(req);
    if (!session?.claims) return redirect(res, '/');
    sessions.delete(session.id);
    const endSession = client.buildEndSessionUrl(config, {
      id_token_hint: session.tokens.id_token,
      post_logout_redirect_uri: `${BASE_URL}/`,
    });
    return redirect(res, endSession.href);
  }

  // Back-channel logout: verify the logout token, end every local session of its sid,
  // answer 200. Anything wrong with the token is a 400.
  if (url.pathname === '/backchannel-logout' && req.method === 'POST') {
    let body = '';
    for await (const chunk of req) body += chunk;
    const logoutToken = new URLSearchParams(body).get('logout_token') ?? '';
    let payload;
    try {
      ({ payload } = await jose.jwtVerify(logoutToken, jwks, {
        issuer: config.serverMetadata().issuer,
        audience: CLIENT_ID,
        typ: 'logout+jwt',
        requiredClaims: ['iat', 'jti', 'sid', 'events'],
      }));
    } catch {
      return send(res, 400, 'invalid logout token');
    }
    if (!payload.events['http://schemas.openid.net/event/backchannel-logout'] || 'nonce' in payload) {
      return send(res, 400, 'invalid logout token');
    }
    for (const [id, session] of sessions) if (session.sid === payload.sid) sessions.delete(id);
    return send(res, 200, '', { 'cache-control': 'no-store' });
  }

  if (url.pathname === '/') return send(res, 200, sessionOf(req)?.claims ? 'signed in' : 'signed out');
  return send(res, 404, 'not found');
}

http
  .createServer((req, res) =>
    handle(req, res).catch((err) => {
      console.error(err);
      if (!res.headersSent) send(res, 500, 'sign-in failed');
    }),
  )
  .listen(Number(PORT), () => console.log(`window site at ${BASE_URL}`));
