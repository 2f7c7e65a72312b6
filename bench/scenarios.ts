// The loads the bench measures, each the same on every server: what one operation is,
// and what has to happen on a server before its operations can be timed.
import type { Spec } from './common.ts';
import { clientCredentials, passwordSignIns, signIn, ssoHops, type Stats } from './load.ts';
import type { ScenarioName } from './settings.ts';
import type { Server } from './servers.ts';

export type Scenario = {
  name: ScenarioName;
  // What one operation is, for the table.
  operation: string;
  // Readies a server for this load; answers a function that loads it for `seconds`.
  prepare(server: Server, spec: Spec, connections: number): Promise<(seconds: number) => Promise<Stats>>;
};

export const scenarios: Record<ScenarioName, Scenario> = {
  // A service asking for a token with its secret: one POST /token each.
  client_credentials: {
    name: 'client_credentials',
    operation: 'token',
    async prepare(server, _spec, connections) {
      return (seconds) => clientCredentials(server.url, server.clients.service, seconds, connections);
    },
  },
  // A person signed in at window A opens window B: GET /auth with the session cookie,
  // a code at once, B redeems it with its PKCE verifier at POST /token. One person per
  // loop, each signed in once here with a password.
  sso_hop: {
    name: 'sso_hop',
    operation: 'hop',
    async prepare(server, spec) {
      const cookies: string[] = [];
      for (const person of spec.people) cookies.push(await signIn(server.url, server.clients.a, spec.redirectUri, person));
      return (seconds) => ssoHops({ base: server.url, redirectUri: spec.redirectUri }, cookies, server.clients.b, seconds);
    },
  },
  // A person with no session signs in with a password, from the authorize request to the
  // code: the authorize redirect, the login page, the password (argon2id on ours), the code.
  sign_in: {
    name: 'sign_in',
    operation: 'sign-in',
    async prepare(server, spec) {
      return (seconds) => passwordSignIns({ base: server.url, redirectUri: spec.redirectUri }, server.clients.a, spec.people, seconds);
    },
  },
};
