// Pages run no inline script (the Content-Security-Policy allows scripts from this
// server only). A page that needs no decision from the person marks the button to
// press with data-auto-submit; without JavaScript the button stays for a click.
document.addEventListener('DOMContentLoaded', function () {
  var button = document.querySelector('[data-auto-submit]');
  if (button) button.click();
});
