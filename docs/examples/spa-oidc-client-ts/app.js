// A single-page window site with oidc-client-ts: the authorization code flow with PKCE,
// as a public client (registered with --auth-method none, so it has no secret).
// config.json next to the page: { "issuer": "https://passport.example.gov.cn", "clientId": "..." },
// and optionally "api": the identifier of an API of the window, whose address it is too.
// Registered for it: redirect URI and post-logout redirect URI, both this page's address
// (e.g. https://app.example-window.cn/); front-channel logout URI: frontchannel.html next
// to it (see frontchannel.js).
const config = await (await fetch('config.json')).json();
const here = `${location.origin}/`;

const userManager = new oidc.UserManager({
  authority: config.issuer,
  client_id: config.clientId,
  redirect_uri: here,
  post_logout_redirect_uri: here,
  response_type: 'code',
  // A refresh token comes with every sign-in, bound to the person's session at the provider.
  scope: `openid profile email phone enterprise${config.api ? ' orders:read' : ''}`,
  // RFC 8707: the access token is a JWT for the window's API.
  resource: config.api,
  // Keep acr, amr and auth_time in user.profile (the library drops them by default).
  filterProtocolClaims: ['nbf', 'jti', 'nonce', 'at_hash', 'iat', 'exp'],
  // Tokens live in this tab's sessionStorage (the library's default), never in a cookie.
  automaticSilentRenew: false,
});

const show = (id, visible) => (document.getElementById(id).hidden = !visible);

async function render() {
  const user = await userManager.getUser();
  const signedIn = user !== null && !user.expired;
  document.getElementById('status').textContent = signedIn ? '已登录' : '未登录';
  // user.profile: the ID token's claims; `enterprise` when the person acts for one.
  document.getElementById('claims').textContent = signedIn ? JSON.stringify(user.profile, null, 2) : '';
  show('login', !signedIn);
  show('refresh', signedIn);
  show('orders', signedIn && Boolean(config.api));
  show('logout', signedIn);
}

// Back from the provider with ?code=...&state=...: redeem the code (PKCE), then tidy the URL.
const query = new URLSearchParams(location.search);
if (query.has('code') || query.has('error')) {
  await userManager.signinRedirectCallback();
  history.replaceState(null, '', here);
}

document.getElementById('login').onclick = () => userManager.signinRedirect();
// A new access token with the refresh token (which rotates on each use).
document.getElementById('refresh').onclick = async () => {
  await userManager.signinSilent();
  await render();
  document.getElementById('status').dataset.refreshed = 'yes';
};
// The window's API, called with the access token (the API allows this page's origin: CORS).
document.getElementById('orders').onclick = async () => {
  const user = await userManager.getUser();
  const answer = await fetch(`${config.api}/orders`, { headers: { authorization: `Bearer ${user.access_token}` } });
  const result = document.getElementById('api');
  result.dataset.status = String(answer.status);
  result.textContent = await answer.text();
};
// RP-initiated logout: the library sends id_token_hint and post_logout_redirect_uri.
document.getElementById('logout').onclick = () => userManager.signoutRedirect();
// Signed out at another window (front-channel logout): frontchannel.js, in the provider's
// frame, tells this site's open pages the ended session's issuer and sid.
new BroadcastChannel('frontchannel-logout').onmessage = async ({ data }) => {
  const user = await userManager.getUser();
  if (data.iss !== config.issuer || user?.profile.sid !== data.sid) return;
  await userManager.removeUser();
  await render();
};

await render();
