import { spawnSync } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createClient, updateClient } from '../../src/windows/clients.ts';
import { exampleApi, EXAMPLES, missingTools, toolsPresent, setUpPerson, startExample, startSameSiteServer, type ExampleProcess } from '../helpers/examples.ts';
import { siteScenarios } from '../helpers/site-scenarios.ts';
import { freePort } from '../helpers/processes.ts';
import type { TestServer } from '../helpers/server.ts';
import { windowSite, type WindowSite } from '../helpers/window-site.ts';

// docs/examples/flask-authlib/app.py, the guide's Flask site on Authlib, run by Debian's
// python3 (python3-flask, python3-authlib, python3-requests) against the real server.

let server: TestServer;
let site: ExampleProcess | undefined;
let other: WindowSite;
let base: string;
let clientId: string;
let enterpriseId: string;
let windowId: number;
let api: ExampleProcess | undefined;

const PYTHON = '/usr/bin/python3';
const TOOLS = { [PYTHON]: 'python3' };

const MODULES_PACKAGES = 'apt-get install python3-flask python3-authlib python3-requests';
const missing = () => {
  const tools = missingTools(TOOLS);
  if (tools.length > 0) return tools;
  const imported = spawnSync(PYTHON, ['-c', 'import flask, authlib, requests'], { stdio: 'ignore' }).status === 0;
  return imported ? [] : [`python3 cannot import flask, authlib and requests: ${MODULES_PACKAGES}`];
};

async function setUp() {
  const absent = missing();
  if (absent.length > 0) throw new Error(absent.join('\n'));
  server = await startSameSiteServer();
  const given = await setUpPerson(server);
  windowId = given.windowId;
  enterpriseId = given.enterprise.id;
  const port = await freePort();
  base = `http://127.0.0.1:${port}`;
  const created = await createClient(server.db, {
    windowId,
    name: 'Flask 示例',
    redirectUris: [`${base}/callback`],
    postLogoutRedirectUris: [`${base}/signed-out`],
    backchannelLogoutUri: `${base}/backchannel-logout`,
  });
  clientId = created.clientId;
  other = await windowSite(server, { windowId, name: 'other-window' });
  const started = await exampleApi(server, windowId);
  api = started.process;
  // Authlib refuses a token endpoint on plain http unless told it is a test.
  site = await startExample(
    PYTHON,
    [`${EXAMPLES}/flask-authlib/app.py`],
    { ISSUER: server.url, CLIENT_ID: created.clientId, CLIENT_SECRET: created.clientSecret!, BASE_URL: base, PORT: String(port), SESSION_SECRET: 'a-test-secret-of-at-least-32-characters', AUTHLIB_INSECURE_TRANSPORT: '1', API_IDENTIFIER: started.api.identifier },
    `${base}/`,
  );
}

async function tearDown() {
  await site?.stop();
  await api?.stop();
  await other?.close();
  await server?.close();
}

// Outside the describe block, so that under .ci/run a missing tool is a failed test, not
// skipped ones.
const present = toolsPresent(import.meta.filename, missing());
it.runIf(present)('has its tools installed', () => expect(missing()).toEqual([]));

describe.runIf(present)('the Flask + Authlib example', () => {
  beforeAll(setUp);
  afterAll(tearDown);

  siteScenarios(
    () => ({
      server,
      other,
      windowId,
      enterpriseId,
      base,
      clientId,
      site: site!,
      api: api!,
      // Front-channel instead of back-channel for that test: only the provider's page's frame can end it.
      front: {
        url: base,
        process: site!,
        before: async () => void (await updateClient(server.db, clientId, { backchannelLogoutUri: null, frontchannelLogoutUri: `${base}/frontchannel-logout` })),
        after: async () => void (await updateClient(server.db, clientId, { backchannelLogoutUri: `${base}/backchannel-logout`, frontchannelLogoutUri: null })),
      },
    }),
    {
      landing: '/me',
      signedOut: '/signed-out',
      resourceHow: 'authorize_redirect(..., resource=)',
      signedIn: async (page, url) => (await (await page.goto(`${url}/`))!.text()) === 'signed in',
      refusesMissingSid: true,
      quietSite: false,
    },
  );
});
