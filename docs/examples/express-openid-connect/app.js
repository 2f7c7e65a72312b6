// A window site on Express with express-openid-connect.
// Configuration from the environment:
//   ISSUER         e.g. https://passport.example.gov.cn
//   CLIENT_ID      CLIENT_SECRET   (from `sme-passport client create`)
//   BASE_URL       this site's own address, e.g. https://www.example-window.cn
//   SESSION_SECRET a long random string that encrypts the session cookie
//   PORT           where to listen (default 8080)
//   API_IDENTIFIER optional: an API of the window (the guide's section 7), whose address it
//                  is too; the access token is then a JWT for it, and /orders calls it
// Registered for it: redirect URI BASE_URL/callback, post-logout redirect URI
// BASE_URL/signed-out, back-channel logout URI BASE_URL/backchannel-logout; if this site
// and the provider are same-site, front-channel logout URI BASE_URL/frontchannel-logout.
import express from 'express';
import eoc from 'express-openid-connect';

const { auth, requiresAuth } = eoc;
const { ISSUER, CLIENT_ID, CLIENT_SECRET, BASE_URL, SESSION_SECRET, PORT = '8080', API_IDENTIFIER } = process.env;

// Where back-channel logouts are remembered until the session they end comes back. One
// process may keep them in memory; several nodes share a store (express-session stores
// such as connect-redis fit).
const loggedOut = new Map();
const logoutStore = {
  get(key, callback) {
    callback(null, loggedOut.get(key));
  },
  set(key, value, callback) {
    loggedOut.set(key, value);
    callback(null);
  },
  destroy(key, callback) {
    loggedOut.delete(key);
    callback(null);
  },
};

const app = express();

app.use(
  auth({
    issuerBaseURL: ISSUER,
    baseURL: BASE_URL,
    clientID: CLIENT_ID,
    clientSecret: CLIENT_SECRET,
    secret: SESSION_SECRET,
    authRequired: false,
    // Sign out at the provider too (RP-initiated logout with id_token_hint).
    idpLogout: true,
    authorizationParams: {
      response_type: 'code',
      // A refresh token comes with every sign-in, bound to the person's session at the provider.
      scope: `openid profile email phone enterprise${API_IDENTIFIER ? ' orders:read' : ''}`,
      // RFC 8707: the access token is for this API. The provider remembers it for the code
      // and the refresh token, whose requests the library sends without it.
      ...(API_IDENTIFIER && { resource: API_IDENTIFIER }),
    },
    routes: { postLogoutRedirect: '/signed-out' },
    backchannelLogout: { store: logoutStore },
  }),
);

// The claims of the ID token; `enterprise` is there when the person acts for one.
app.get('/me', requiresAuth(), (req, res) => res.json(req.oidc.idTokenClaims));

app.post('/refresh', requiresAuth(), async (req, res) => {
  try {
    const accessToken = await req.oidc.accessToken.refresh();
    res.json({ expires_in: accessToken.expires_in });
  } catch (err) {
    if (err.error !== 'invalid_grant') throw err;
    // The person's sign-in session at the provider has ended, and its refresh token with it
    // (signed out at another window, timed out, account disabled): end this one too.
    req.appSession = undefined;
    res.status(401).send('signed out at the provider');
  }
});

// The window's API, called with the person's access token (a JWT for it).
if (API_IDENTIFIER) {
  app.get('/orders', requiresAuth(), async (req, res) => {
    const { access_token: accessToken } = req.oidc.accessToken;
    const answer = await fetch(`${API_IDENTIFIER}/orders`, { headers: { authorization: `Bearer ${accessToken}` } });
    res.status(answer.status).type('application/json').send(await answer.text());
  });
}

// Front-channel logout: the provider's sign-out page loads this in a hidden frame, with
// this site's session cookie only where the site and the provider are same-site.
app.get('/frontchannel-logout', (req, res) => {
  if (req.query.iss === ISSUER && req.oidc.idTokenClaims?.sid === req.query.sid) req.appSession = undefined;
  res.set('cache-control', 'no-store').send('');
});

app.get('/signed-out', (req, res) => res.send('signed out'));
app.get('/', (req, res) => res.send(req.oidc.isAuthenticated() ? 'signed in' : 'signed out'));

app.listen(Number(PORT), () => console.log(`window site at ${BASE_URL}`));
