// Child process: bare oidc-provider with the same clients as ours.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { createBareProvider } from './bare-provider.ts';
import { readSpec, serveUntilStopped } from './common.ts';

const spec = readSpec();
// Listen first: the issuer has to name the port the system picked.
const server = http.createServer();
await new Promise<void>((resolve, reject) => server.once('error', reject).listen(0, '127.0.0.1', resolve));
const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
server.on('request', createBareProvider(url, spec).callback());

serveUntilStopped({ url, clients: spec.clients }, async () => {
  server.closeAllConnections();
  await new Promise<void>((resolve) => server.close(() => resolve()));
});
