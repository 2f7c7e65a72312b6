// A tiny static server for the single-page example: the page, oidc-client-ts's browser
// build from node_modules, and config.json from the environment (ISSUER, CLIENT_ID, PORT;
// API_IDENTIFIER, optional: an API of the window that the page calls, whose address it is too,
// which lists this site's origin in its CORS_ORIGINS).
// Any web server does the same in production.
import fs from 'node:fs';
import http from 'node:http';
import { createRequire } from 'node:module';
import path from 'node:path';

const { ISSUER, CLIENT_ID, PORT = '8080', API_IDENTIFIER } = process.env;
const here = import.meta.dirname;
const library = path.join(path.dirname(createRequire(import.meta.url).resolve('oidc-client-ts')), '..', 'browser', 'oidc-client-ts.min.js');

const files = {
  '/': [path.join(here, 'index.html'), 'text/html; charset=utf-8'],
  '/app.js': [path.join(here, 'app.js'), 'text/javascript; charset=utf-8'],
  '/frontchannel.html': [path.join(here, 'frontchannel.html'), 'text/html; charset=utf-8'],
  '/frontchannel.js': [path.join(here, 'frontchannel.js'), 'text/javascript; charset=utf-8'],
  '/oidc-client-ts.min.js': [library, 'text/javascript; charset=utf-8'],
};

http
  .createServer((req, res) => {
    const { pathname } = new URL(req.url, 'http://localhost');
    if (pathname === '/config.json') {
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ issuer: ISSUER, clientId: CLIENT_ID, api: API_IDENTIFIER }));
      return;
    }
    const file = files[pathname];
    if (!file) return res.writeHead(404).end('not found');
    res.writeHead(200, { 'content-type': file[1] });
    fs.createReadStream(file[0]).pipe(res);
  })
  .listen(Number(PORT), '127.0.0.1', () => console.log(`single-page site at http://127.0.0.1:${PORT}/`));
