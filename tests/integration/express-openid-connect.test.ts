import { afterAll, beforeAll, describe } from 'vitest';
import { createClient } from '../../src/windows/clients.ts';
import { exampleApi, EXAMPLES, setUpPerson, startExample, startSameSiteServer, type ExampleProcess } from '../helpers/examples.ts';
import { siteScenarios } from '../helpers/site-scenarios.ts';
import { freePort } from '../helpers/processes.ts';
import type { TestServer } from '../helpers/server.ts';
import { windowSite, type WindowSite } from '../helpers/window-site.ts';

// docs/examples/express-openid-connect/app.js, the guide's Express site, as a process of
// its own against the real server.

let server: TestServer;
let site: ExampleProcess | undefined;
let quietSite: ExampleProcess | undefined;
let frontSite: ExampleProcess | undefined;
let front: string;
let windowId: number;
let other: WindowSite;
let base: string;
let quiet: string;
let clientId: string;
let enterpriseId: string;
let api: ExampleProcess | undefined;

// The example as a process with a client of its own; `backchannel`: whether the client
// has a back-channel logout URI; `apiIdentifier`: the window's API its tokens are for;
// `frontchannel`: whether the client has a front-channel logout URI.
async function startSite(windowId: number, name: string, backchannel: boolean, apiIdentifier?: string, frontchannel = false) {
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const created = await createClient(server.db, {
    windowId,
    name,
    redirectUris: [`${url}/callback`],
    postLogoutRedirectUris: [`${url}/signed-out`],
    ...(backchannel && { backchannelLogoutUri: `${url}/backchannel-logout` }),
    ...(frontchannel && { frontchannelLogoutUri: `${url}/frontchannel-logout` }),
  });
  const env = {
    ISSUER: server.url,
    CLIENT_ID: created.clientId,
    CLIENT_SECRET: created.clientSecret!,
    BASE_URL: url,
    PORT: String(port),
    SESSION_SECRET: 'a-test-secret-of-at-least-32-characters',
    ...(apiIdentifier && { API_IDENTIFIER: apiIdentifier }),
  };
  return { url, clientId: created.clientId, process: await startExample(process.execPath, [`${EXAMPLES}/express-openid-connect/app.js`], env, `${url}/`) };
}

beforeAll(async () => {
  server = await startSameSiteServer();
  const given = await setUpPerson(server);
  windowId = given.windowId;
  enterpriseId = given.enterprise.id;
  other = await windowSite(server, { windowId, name: 'other-window' });
  const started = await exampleApi(server, windowId);
  api = started.process;
  ({ url: base, clientId, process: site } = await startSite(windowId, 'express-openid-connect 示例', true, started.api.identifier));
  // The same site without back-channel logout: it learns of a sign-out elsewhere only
  // when its refresh token is refused.
  ({ url: quiet, process: quietSite } = await startSite(windowId, 'express-openid-connect 示例（无后端通道退出）', false));
  // With front-channel logout only.
  ({ url: front, process: frontSite } = await startSite(windowId, 'express-openid-connect 示例（前端通道退出）', false, undefined, true));
});

afterAll(async () => {
  await site?.stop();
  await quietSite?.stop();
  await frontSite?.stop();
  await api?.stop();
  await other?.close();
  await server?.close();
});

describe('the express-openid-connect example', () => {
  siteScenarios(
    () => ({ server, other, windowId, enterpriseId, base, clientId, site: site!, api: api!, front: { url: front, process: frontSite! }, quiet: { url: quiet, process: quietSite! } }),
    {
      landing: '/',
      signedOut: '/signed-out',
      resourceHow: 'authorizationParams.resource',
      signedIn: async (page, url) => (await (await page.goto(`${url}/`))!.text()) === 'signed in',
      refusesMissingSid: false,
      quietSite: true,
    },
  );
});
