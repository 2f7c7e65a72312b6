import http from 'node:http';
import type { AddressInfo } from 'node:net';
import * as oidc from 'openid-client';
import { createClient, type NewClient } from '../../src/windows/clients.ts';
import type { Browser, Visit } from './browser.ts';
import type { TestServer } from './server.ts';

// A window site as a real relying party (openid-client), registered through the
// windows module, optionally with a back-channel logout receiver.

export type WindowSite = Awaited<ReturnType<typeof windowSite>>;

async function logoutReceiver() {
  const tokens: string[] = [];
  const server = http.createServer((req, res) => {
    let body = '';
    req.on('data', (chunk) => (body += chunk));
    req.on('end', () => {
      const token = new URLSearchParams(body).get('logout_token');
      if (token) tokens.push(token);
      res.writeHead(200, { 'cache-control': 'no-store' }).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/backchannel-logout`;
  return { url, tokens, close: () => new Promise<void>((resolve) => server.close(() => resolve())) };
}

export async function windowSite(
  server: TestServer,
  options: { windowId: number; name: string; backchannel?: boolean } & Partial<Omit<NewClient, 'windowId' | 'name'>>,
) {
  const receiver = options.backchannel ? await logoutReceiver() : undefined;
  const slug = options.name.replace(/\W+/g, '-');
  const redirectUri = `http://127.0.0.1:9/${slug}/callback`;
  const postLogoutUri = `http://127.0.0.1:9/${slug}/signed-out`;
  const { backchannel: _b, ...rest } = options;
  const created = await createClient(server.db, {
    redirectUris: [redirectUri],
    postLogoutRedirectUris: [postLogoutUri],
    ...(receiver && { backchannelLogoutUri: receiver.url }),
    ...rest,
  });
  const rp = await relyingParty(server, { clientId: created.clientId, clientSecret: created.clientSecret, redirectUri, ...(options.authMethod === 'none' && { auth: oidc.None() }) });
  return {
    ...rp,
    clientSecret: created.clientSecret,
    postLogoutUri,
    logoutTokens: receiver?.tokens ?? [],
    close: async () => receiver?.close(),
  };
}

export type RelyingParty = Awaited<ReturnType<typeof relyingParty>>;

// A relying party for a client registered elsewhere (the console, the API): openid-client
// with the code flow and PKCE, in the test's cookie-jar browser.
// `auth`: how it authenticates at the token endpoint (openid-client's default otherwise).
export async function relyingParty(server: Pick<TestServer, 'url'>, client: { clientId: string; clientSecret: string | undefined; redirectUri: string; auth?: oidc.ClientAuth }) {
  const { clientId, redirectUri } = client;
  const config = await oidc.discovery(new URL(server.url), clientId, client.clientSecret, client.auth, { execute: [oidc.allowInsecureRequests] });

  return {
    config,
    clientId,
    redirectUri,

    // Starts a sign-in: returns where the browser ended up and what finishing needs.
    async authorize(b: Browser, params: Record<string, string> = {}) {
      const verifier = oidc.randomPKCECodeVerifier();
      const state = oidc.randomState();
      const nonce = oidc.randomNonce();
      const url = oidc.buildAuthorizationUrl(config, {
        redirect_uri: redirectUri,
        scope: 'openid profile',
        code_challenge: await oidc.calculatePKCECodeChallenge(verifier),
        code_challenge_method: 'S256',
        state,
        nonce,
        ...params,
      });
      return { visit: await b.visit(url, redirectUri), checks: { pkceCodeVerifier: verifier, expectedState: state, expectedNonce: nonce } };
    },

    redeem(callback: Visit, checks: { pkceCodeVerifier: string; expectedState: string; expectedNonce: string }) {
      if (callback.kind !== 'redirect') throw new Error(`expected a redirect back to the window, got a page (${callback.status}):\n${callback.html.slice(0, 1500)}`);
      return oidc.authorizationCodeGrant(config, callback.to, checks);
    },

    // The whole sign-in; types the password only if the provider asks for it.
    async signIn(b: Browser, credentials: { identifier: string; password: string } | undefined, params: Record<string, string> = {}) {
      const { visit, checks } = await this.authorize(b, params);
      let at = visit;
      const askedForPassword = at.kind === 'page' && at.html.includes('name="password"');
      if (askedForPassword) {
        if (!credentials) throw new Error('the provider asked for a password');
        at = await b.submit(at, '/login', credentials, redirectUri);
      }
      const tokens = await this.redeem(at, checks);
      return { tokens, claims: tokens.claims()!, askedForPassword, loginPage: visit.kind === 'page' ? visit.html : undefined };
    },
  };
}
