import crypto from 'node:crypto';
import autocannon from 'autocannon';
import type { Credentials, Person } from './common.ts';

// count: operations completed (a token, a hop, a sign-in) in the measured time.
export type Stats = { count: number; perSecond: number; p50: number; p99: number; errors: number; firstError?: string };

const FORM = 'application/x-www-form-urlencoded';
// RFC 6749 2.3.1: id and secret are form-urlencoded before they are joined.
const basic = (c: Credentials) => `Basic ${Buffer.from(`${encodeURIComponent(c.id)}:${encodeURIComponent(c.secret)}`).toString('base64')}`;

// ---- scenario 1: client_credentials, one request per iteration, so an HTTP load tool fits.

export async function clientCredentials(base: string, client: Credentials, seconds: number, connections: number): Promise<Stats> {
  const r = await autocannon({
    url: `${base}/token`,
    method: 'POST',
    headers: { authorization: basic(client), 'content-type': FORM },
    body: 'grant_type=client_credentials',
    connections,
    duration: seconds,
  });
  return { count: r['2xx'], perSecond: r['2xx'] / r.duration, p50: r.latency.p50, p99: r.latency.p99, errors: r.non2xx + r.errors };
}

// ---- scenario 2: SSO hops. A hop is two dependent requests with a code carried from
// one to the next, which autocannon cannot express, so plain loops over fetch.

export type Flow = { base: string; redirectUri: string };

// PKCE (S256), as a careful relying party sends it even with a client secret.
function pkce() {
  const verifier = crypto.randomBytes(32).toString('base64url');
  return { verifier, challenge: crypto.createHash('sha256').update(verifier).digest('base64url') };
}

const authorizeUrl = (base: string, clientId: string, redirectUri: string, state: string, challenge: string) =>
  `${base}/auth?${new URLSearchParams({ client_id: clientId, response_type: 'code', scope: 'openid', redirect_uri: redirectUri, state, nonce: state, code_challenge: challenge, code_challenge_method: 'S256' })}`;

// One SSO hop: the session cookie alone gets a code for client B, which B redeems.
async function hop(flow: Flow, cookie: string, b: Credentials): Promise<void> {
  const state = crypto.randomBytes(8).toString('base64url');
  const { verifier, challenge } = pkce();
  const auth = await fetch(authorizeUrl(flow.base, b.id, flow.redirectUri, state, challenge), { redirect: 'manual', headers: { cookie } });
  await auth.arrayBuffer(); // drain, so the connection goes back to the pool
  const location = new URL(auth.headers.get('location') ?? '', flow.base);
  const code = location.searchParams.get('code');
  if (auth.status !== 303 || !code || location.searchParams.get('state') !== state || !location.href.startsWith(flow.redirectUri)) {
    throw new Error(`authorize answered ${auth.status} ${location.href}`);
  }
  const token = await fetch(`${flow.base}/token`, {
    method: 'POST',
    headers: { authorization: basic(b), 'content-type': FORM },
    body: new URLSearchParams({ grant_type: 'authorization_code', code, redirect_uri: flow.redirectUri, code_verifier: verifier }),
  });
  const body = (await token.json()) as { id_token?: string; error?: string };
  if (token.status !== 200 || !body.id_token) throw new Error(`token answered ${token.status} ${body.error ?? ''}`);
}

// One loop per worker, back to back until the time is up; each iteration's latency is kept.
async function loopFor(loops: Array<() => Promise<unknown>>, seconds: number): Promise<Stats> {
  const latencies: number[] = [];
  let errors = 0;
  let firstError: string | undefined;
  const start = performance.now();
  const end = start + seconds * 1000;
  const loop = async (work: () => Promise<unknown>) => {
    while (performance.now() < end) {
      const t0 = performance.now();
      try {
        await work();
        latencies.push(performance.now() - t0);
      } catch (err) {
        errors++;
        firstError ??= String(err);
      }
    }
  };
  await Promise.all(loops.map(loop));
  const elapsed = (performance.now() - start) / 1000;
  latencies.sort((x, y) => x - y);
  const pct = (p: number) => latencies[Math.max(0, Math.ceil((p / 100) * latencies.length) - 1)] ?? NaN;
  return { count: latencies.length, perSecond: latencies.length / elapsed, p50: pct(50), p99: pct(99), errors, ...(firstError && { firstError }) };
}

// Each loop is a different person. One person hopping 16 times at once piles every token
// onto one grant, which no real user does, and the in-memory adapter walks a grant's
// whole token list on every save: bare then slows down as the run goes on (measured:
// 414 hops/s in the first 4 s, 220 after 18 s), and the ceiling would depend on BENCH_SECONDS.
export function ssoHops(flow: Flow, cookies: string[], b: Credentials, seconds: number): Promise<Stats> {
  return loopFor(cookies.map((cookie) => () => hop(flow, cookie, b)), seconds);
}

// ---- the real sign-in that creates the session a loop of hops rides on.

const unescapeHtml = (s: string) => s.replace(/&quot;/g, '"').replace(/&#39;/g, "'").replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&amp;/g, '&');
const attr = (tag: string, name: string) => {
  const m = new RegExp(`\\b${name}="([^"]*)"`, 'i').exec(tag);
  return m ? unescapeHtml(m[1]!) : undefined;
};

// The first form of a page, as a browser would submit it with the username and
// password typed in. Works for our login page (identifier, password, csrf) and for
// oidc-provider's development one (login, password, prompt).
function fillForm(html: string, pageUrl: string, username: string, password: string) {
  const form = /<form\b([^>]*)>([\s\S]*?)<\/form>/i.exec(html);
  if (!form) throw new Error(`no form on ${pageUrl}`);
  const fields = new URLSearchParams();
  for (const [input] of form[2]!.matchAll(/<input\b[^>]*>/gi)) {
    const name = attr(input, 'name');
    if (!name) continue;
    const typed = name === 'identifier' || name === 'login' ? username : name === 'password' ? password : undefined;
    fields.set(name, typed ?? attr(input, 'value') ?? '');
  }
  return { action: new URL(attr(form[1]!, 'action') ?? pageUrl, pageUrl).href, fields };
}

// A cookie jar for one host, as a browser keeps it: name -> value and path. An emptied
// or expired cookie is removed. (The interaction cookies are scoped to their own
// paths, so only the session cookies ride along on the hops.)
type Jar = Map<string, { value: string; path: string }>;

function remember(jar: Jar, setCookie: string) {
  const [pair = '', ...attributes] = setCookie.split(';').map((s) => s.trim());
  const eq = pair.indexOf('=');
  const name = pair.slice(0, eq);
  const value = pair.slice(eq + 1);
  const attribute = (key: string) => attributes.find((a) => a.toLowerCase().startsWith(`${key}=`))?.slice(key.length + 1);
  const expires = attribute('expires');
  if (!value || (expires && Date.parse(expires) < Date.now())) jar.delete(name);
  else jar.set(name, { value, path: attribute('path') ?? '/' });
}

const cookieHeader = (jar: Jar, url: string) => {
  const { pathname } = new URL(url);
  return [...jar].filter(([, c]) => pathname.startsWith(c.path)).map(([name, c]) => `${name}=${c.value}`).join('; ');
};

// Signs the person in on client A like a browser: follow redirects, submit the forms
// shown, until the provider sends us back to the redirect URI with a code. Returns the
// Cookie header that carries the session.
export async function signIn(base: string, a: Credentials, redirectUri: string, person: Person): Promise<string> {
  const jar: Jar = new Map();
  let url = authorizeUrl(base, a.id, redirectUri, 'sign-in', pkce().challenge);
  let init: RequestInit = {};
  for (let step = 0; step < 10; step++) {
    const res = await fetch(url, { ...init, redirect: 'manual', headers: { ...init.headers, cookie: cookieHeader(jar, url) } });
    for (const c of res.headers.getSetCookie()) remember(jar, c);
    const body = await res.text();
    const location = res.headers.get('location');
    if (location?.startsWith(redirectUri)) {
      if (!new URL(location).searchParams.get('code')) throw new Error(`sign-in ended without a code: ${location}`);
      return cookieHeader(jar, `${base}/auth`);
    }
    if (res.status >= 300 && res.status < 400 && location) {
      url = new URL(location, url).href;
      init = {};
    } else if (res.status === 200 && /<form\b/i.test(body)) {
      const { action, fields } = fillForm(body, url, person.username, person.password);
      url = action;
      init = { method: 'POST', headers: { 'content-type': FORM }, body: fields };
    } else {
      throw new Error(`sign-in stuck at ${url}: ${res.status} ${body.slice(0, 200)}`);
    }
  }
  throw new Error('sign-in did not finish within 10 steps');
}

// ---- scenario 3: whole password sign-ins, one loop per person, each from a fresh
// browser (no session), so every one checks a password (argon2id) and writes its records.
export function passwordSignIns(flow: Flow, a: Credentials, people: Person[], seconds: number): Promise<Stats> {
  return loopFor(people.map((person) => () => signIn(flow.base, a, flow.redirectUri, person)), seconds);
}
