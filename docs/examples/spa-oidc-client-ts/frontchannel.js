// The front-channel logout URI: registered as this page's address
// (e.g. https://app.example-window.cn/frontchannel.html, --frontchannel-logout-uri).
// When the person signs out at any window, the provider's sign-out page loads it in a
// hidden frame with ?iss=...&sid=...; a stored user with that issuer and that sid is
// signed out. The frame shares the storage of the site's pages only where the site and
// the provider are same-site (browsers partition a frame's storage otherwise).
//
// No network request here: the provider's page moves on once its frames have loaded,
// so this runs to the end without waiting for anything but the browser's storage.
const query = new URLSearchParams(location.search);
const iss = query.get('iss');
const sid = query.get('sid');

if (iss && sid) {
  // The site's pages open in other tabs (each tab has its own sessionStorage) hear it in app.js.
  new BroadcastChannel('frontchannel-logout').postMessage({ iss, sid });
  // oidc-client-ts keeps the user of this tab under oidc.user:<issuer>:<client_id>.
  const prefix = `oidc.user:${iss}:`;
  for (const key of Object.keys(sessionStorage).filter((k) => k.startsWith(prefix))) {
    const userManager = new oidc.UserManager({ authority: iss, client_id: key.slice(prefix.length), redirect_uri: `${location.origin}/` });
    const user = await userManager.getUser();
    if (user?.profile.sid === sid) await userManager.removeUser();
  }
}
