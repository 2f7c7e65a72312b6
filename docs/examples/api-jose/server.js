// A window's API (resource server) on Node.js: it accepts the provider's JWT access
// tokens (RFC 9068) and verifies them with jose and the provider's published keys alone.
// Configuration from the environment:
//   ISSUER          e.g. https://passport.example.gov.cn
//   API_IDENTIFIER  the API's identifier as registered (`sme-passport api create
//                   --identifier ... --scope orders:read --scope orders:write`); here it is
//                   also the API's own address, e.g. https://api.example-window.cn/orders
//   PORT            where to listen (default 8080)
//   CORS_ORIGINS    optional: the origins of single-page sites that call it from the
//                   browser, separated by spaces, e.g. https://app.example-window.cn
// GET /orders needs the scope orders:read; it answers what the token says of its caller.
import http from 'node:http';
import * as jose from 'jose';

const { ISSUER, API_IDENTIFIER, PORT = '8080' } = process.env;
const corsOrigins = (process.env.CORS_ORIGINS ?? '').split(' ').filter(Boolean);

const metadata = await (await fetch(`${ISSUER}/.well-known/openid-configuration`)).json();
// The keys by kid, cached; fetched again when the provider rotates them.
const jwks = jose.createRemoteJWKSet(new URL(metadata.jwks_uri));

const routes = { 'GET /orders': 'orders:read' };

// RFC 6750: no token at all is answered without an error code; a bad one is invalid_token.
function refuse(res, status, error, description) {
  const challenge = [`Bearer realm="${API_IDENTIFIER}"`];
  if (error) challenge.push(`error="${error}"`, `error_description="${description}"`);
  res.writeHead(status, { 'www-authenticate': challenge.join(', '), 'cache-control': 'no-store' }).end();
}

async function handle(req, res) {
  const { pathname } = new URL(req.url, 'http://localhost');
  // A page of a listed origin may read the answers; its preflight is answered here.
  res.setHeader('vary', 'origin');
  if (corsOrigins.includes(req.headers.origin)) {
    res.setHeader('access-control-allow-origin', req.headers.origin);
    res.setHeader('access-control-expose-headers', 'www-authenticate');
    if (req.method === 'OPTIONS') {
      const preflight = { 'access-control-allow-methods': 'GET', 'access-control-allow-headers': 'authorization', 'access-control-max-age': '600' };
      return res.writeHead(204, preflight).end();
    }
  }
  const route = `${req.method} ${pathname}`;
  if (!Object.hasOwn(routes, route)) return res.writeHead(404).end();
  const scope = routes[route];

  const authorization = req.headers.authorization;
  if (!authorization) return refuse(res, 401);
  const token = /^Bearer ([\w.~+/-]+=*)$/i.exec(authorization)?.[1];
  if (!token) return refuse(res, 401, 'invalid_token', 'expected Authorization: Bearer <token>');

  let payload;
  try {
    // Signed by the provider, issued by it, for this API (aud), an access token (typ:
    // without it, an ID token would pass), not expired.
    ({ payload } = await jose.jwtVerify(token, jwks, {
      issuer: metadata.issuer,
      audience: API_IDENTIFIER,
      typ: 'at+jwt',
      algorithms: ['RS256'],
      requiredClaims: ['sub', 'client_id', 'scope', 'exp'],
    }));
  } catch (err) {
    // Anything wrong with the token is the caller's; the provider out of reach is ours.
    if (!(err instanceof jose.errors.JOSEError) || err instanceof jose.errors.JWKSTimeout) throw err;
    const expired = err instanceof jose.errors.JWTExpired;
    return refuse(res, 401, 'invalid_token', expired ? 'the access token expired' : 'the access token is not valid for this API');
  }
  if (typeof payload.scope !== 'string' || !payload.scope.split(' ').includes(scope)) {
    return refuse(res, 403, 'insufficient_scope', `this needs the scope ${scope}`);
  }

  // sub: the person's account id (the client's id for client_credentials); enterprise_id:
  // the enterprise the person acts for, absent when they act as themselves.
  const caller = { sub: payload.sub, client_id: payload.client_id, scope: payload.scope, enterprise_id: payload.enterprise_id ?? null };
  res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'no-store' }).end(JSON.stringify({ caller, orders: [] }));
}

http
  .createServer((req, res) =>
    handle(req, res).catch((err) => {
      console.error(err);
      if (!res.headersSent) res.writeHead(503, { 'retry-after': '5' }).end();
    }),
  )
  .listen(Number(PORT), () => console.log(`API ${API_IDENTIFIER} on port ${PORT}`));
