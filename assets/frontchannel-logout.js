// The front-channel logout page (src/oidc/frontchannel-logout.ts): it goes on to the
// link's address once every window's frame has loaded (the page's load event waits for
// its frames), or after 4 seconds if one hangs. Without JavaScript the link stays.
(function () {
  var link = document.getElementById('continue');
  if (!link) return;
  var gone = false;
  function go() {
    if (gone) return;
    gone = true;
    window.location.replace(link.href);
  }
  window.addEventListener('load', go);
  setTimeout(go, 4000);
})();
