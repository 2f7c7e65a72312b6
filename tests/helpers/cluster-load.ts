import * as oidc from 'openid-client';
import { browser, type Browser } from './browser.ts';
import type { RelyingParty } from './window-site.ts';

// A bounded load on a cluster, as window sites and back ends make it: a few virtual users,
// each in a loop of password sign-ins, single sign-on hops to a second window, refreshes
// and client-credentials tokens, one at a time. Every HTTP request is counted under what
// it was for; a flow that does not end as it should (an unexpected status, a refused
// connection) is a failure, and its user starts again with a sign-in.

export type Kind = 'sign-in' | 'sso' | 'refresh' | 'client_credentials';
export const KINDS: readonly Kind[] = ['sign-in', 'sso', 'refresh', 'client_credentials'];

// requests: HTTP requests sent; flows: flows finished or failed; failed: flows that failed.
export type Tally = { requests: number; flows: number; failed: number };
export type LoadReport = { byKind: Record<Kind, Tally>; failures: string[]; serverErrors: number };

// Sign-ins cost the most (argon2): one in seven flows.
const ROUND: readonly Kind[] = ['sign-in', 'sso', 'refresh', 'client_credentials', 'sso', 'refresh', 'client_credentials'];

export type LoadParties = {
  // Two first-party windows (refresh tokens on every code flow) and a back end.
  first: () => Promise<RelyingParty>;
  second: () => Promise<RelyingParty>;
  service: () => Promise<oidc.Configuration>;
  person: { identifier: string; password: string };
};

export type Load = { report: () => LoadReport; stop(): Promise<LoadReport> };

export function startLoad(parties: LoadParties, users: number): Load {
  const report: LoadReport = { byKind: Object.fromEntries(KINDS.map((k) => [k, { requests: 0, flows: 0, failed: 0 }])) as Record<Kind, Tally>, failures: [], serverErrors: 0 };
  let stopping = false;

  async function user(n: number): Promise<void> {
    let kind: Kind = 'sign-in';
    const counting: typeof fetch = async (input, init) => {
      report.byKind[kind].requests++;
      const res = await fetch(input, init);
      if (res.status >= 500) report.serverErrors++;
      return res;
    };
    const [first, second, service] = await Promise.all([parties.first(), parties.second(), parties.service()]);
    for (const config of [first.config, second.config, service]) config[oidc.customFetch] = (url, options) => counting(url, options as RequestInit);
    let you: Browser | undefined;
    let refreshToken: string | undefined;
    for (let i = n; !stopping; i++) {
      kind = you && refreshToken ? ROUND[i % ROUND.length]! : 'sign-in';
      try {
        if (kind === 'sign-in') {
          you = browser(counting);
          const signedIn = await first.signIn(you, parties.person);
          if (!signedIn.askedForPassword) throw new Error('a new browser was not asked for a password');
          refreshToken = signedIn.tokens.refresh_token;
        } else if (kind === 'sso') {
          // Throws when the provider asks for the password again.
          const hop = await second.signIn(you!, undefined);
          if (!hop.claims.sub) throw new Error('no subject');
        } else if (kind === 'refresh') {
          refreshToken = (await oidc.refreshTokenGrant(first.config, refreshToken!)).refresh_token;
        } else {
          const issued = await oidc.clientCredentialsGrant(service, { scope: 'openid' });
          if (!issued.access_token) throw new Error('no access token');
        }
        report.byKind[kind].flows++;
      } catch (err) {
        report.byKind[kind].flows++;
        report.byKind[kind].failed++;
        report.failures.push(`${kind}: ${describe(err)}`);
        you = undefined;
        refreshToken = undefined;
      }
    }
  }

  const running = Promise.all(Array.from({ length: users }, (_, n) => user(n)));
  return {
    report: () => report,
    async stop() {
      stopping = true;
      await running;
      return report;
    },
  };
}

// What went wrong, in a line: the status and error of a response, the code of a refused
// connection, the text of an error page (not its markup).
function describe(err: unknown): string {
  const e = err as Error & { cause?: unknown; error?: string; status?: number };
  const cause = e.cause instanceof Response ? `HTTP ${e.cause.status}` : ((e.cause as { code?: string } | undefined)?.code ?? '');
  const message = e.message.replace(/<head[\s\S]*?<\/head>/g, '').replace(/<[^>]+>/g, ' ').replace(/\s+/g, ' ');
  return [e.error, e.status, cause, message.slice(0, 400)].filter(Boolean).join(' ');
}

export const totalFailed = (r: LoadReport) => Object.values(r.byKind).reduce((sum, t) => sum + t.failed, 0);
export const totalRequests = (r: LoadReport) => Object.values(r.byKind).reduce((sum, t) => sum + t.requests, 0);
