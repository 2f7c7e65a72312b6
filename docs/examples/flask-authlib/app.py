# A window site on Flask with Authlib.
# Configuration from the environment:
#   ISSUER         e.g. https://passport.example.gov.cn
#   CLIENT_ID      CLIENT_SECRET   (from `sme-passport client create`)
#   BASE_URL       this site's own address, e.g. https://www.example-window.cn
#   SESSION_SECRET a long random string that signs Flask's session cookie
#   PORT           where to listen (default 8080)
#   API_IDENTIFIER optional: an API of the window (the guide's section 7), whose address it
#                  is too; the access token is then a JWT for it, and /orders calls it
# Registered for it: redirect URI BASE_URL/callback, post-logout redirect URI
# BASE_URL/signed-out, back-channel logout URI BASE_URL/backchannel-logout; if this site
# and the provider are same-site, front-channel logout URI BASE_URL/frontchannel-logout.
import os
import time
from urllib.parse import urlencode

import requests
from authlib.integrations.flask_client import OAuth, OAuthError
from authlib.jose import JsonWebKey, JsonWebToken
from flask import Flask, abort, jsonify, redirect, request, session

ISSUER = os.environ["ISSUER"]
BASE_URL = os.environ["BASE_URL"]
API_IDENTIFIER = os.environ.get("API_IDENTIFIER")

app = Flask(__name__)
app.secret_key = os.environ["SESSION_SECRET"]

oauth = OAuth(app)
oauth.register(
    "passport",
    client_id=os.environ["CLIENT_ID"],
    client_secret=os.environ["CLIENT_SECRET"],
    server_metadata_url=f"{ISSUER}/.well-known/openid-configuration",
    client_kwargs={
        "scope": "openid profile email phone enterprise" + (" orders:read" if API_IDENTIFIER else ""),
        "code_challenge_method": "S256",
    },
)

# The sids the provider ended by back-channel logout. Flask keeps the session in a
# cookie the server cannot reach, so each request checks its sid against this set.
# Several processes share it (Redis, a database table) and drop entries after a day.
ended_sids = {}

# The algorithms the provider signs with, and no other (never "none").
jwt = JsonWebToken(["RS256", "ES256"])


@app.before_request
def forget_ended_sessions():
    if session.get("sid") in ended_sids:
        session.clear()


@app.route("/login")
def login():
    # A refresh token comes with every sign-in, bound to the person's session at the provider.
    # resource= (RFC 8707): the access token is for this API. The provider remembers it for
    # the code and the refresh token, whose requests Authlib sends without it.
    extra = {"resource": API_IDENTIFIER} if API_IDENTIFIER else {}
    return oauth.passport.authorize_redirect(f"{BASE_URL}/callback", **extra)


@app.route("/callback")
def callback():
    token = oauth.passport.authorize_access_token()  # checks state, PKCE, the ID token, its nonce
    claims = token["userinfo"]  # the ID token's claims
    session.clear()
    session.update(
        claims=dict(claims),
        sid=claims.get("sid"),
        id_token=token["id_token"],
        access_token=token["access_token"],
        refresh_token=token.get("refresh_token"),
    )
    return redirect("/me")


@app.route("/me")
def me():
    if "claims" not in session:
        abort(401)
    return jsonify(session["claims"])


@app.route("/refresh", methods=["POST"])
def refresh():
    if not session.get("refresh_token"):
        abort(401)
    try:
        token = oauth.passport.fetch_access_token(grant_type="refresh_token", refresh_token=session["refresh_token"])
    except OAuthError as err:
        if err.error != "invalid_grant":
            raise
        # The person's sign-in session at the provider has ended, and its refresh token with
        # it (signed out at another window, timed out, account disabled): end this one too.
        session.clear()
        abort(401)
    session["refresh_token"] = token["refresh_token"]  # a new one every time: the old one is used up
    session["access_token"] = token["access_token"]
    return jsonify(expires_in=token["expires_in"])


# The window's API, called with the person's access token (a JWT for it).
@app.route("/orders")
def orders():
    if not API_IDENTIFIER or "access_token" not in session:
        abort(401)
    answer = requests.get(f"{API_IDENTIFIER}/orders", headers={"Authorization": f"Bearer {session['access_token']}"}, timeout=5)
    return answer.content, answer.status_code, {"Content-Type": "application/json"}


@app.route("/logout")
def logout():
    id_token = session.get("id_token")
    session.clear()
    metadata = oauth.passport.load_server_metadata()
    query = {"post_logout_redirect_uri": f"{BASE_URL}/signed-out"}
    if id_token:
        query["id_token_hint"] = id_token
    return redirect(f"{metadata['end_session_endpoint']}?{urlencode(query)}")


@app.route("/signed-out")
def signed_out():
    return "signed out"


@app.route("/backchannel-logout", methods=["POST"])
def backchannel_logout():
    metadata = oauth.passport.load_server_metadata()
    keys = JsonWebKey.import_key_set(requests.get(metadata["jwks_uri"], timeout=5).json())
    try:
        claims = jwt.decode(
            request.form.get("logout_token", ""),
            keys,
            claims_options={
                "iss": {"essential": True, "value": metadata["issuer"]},
                "aud": {"essential": True, "value": os.environ["CLIENT_ID"]},
                "sid": {"essential": True},
                "jti": {"essential": True},
                "iat": {"essential": True},
            },
        )
        claims.validate(leeway=60)
    except Exception:
        abort(400)
    if "http://schemas.openid.net/event/backchannel-logout" not in claims.get("events", {}) or "nonce" in claims:
        abort(400)
    ended_sids[claims["sid"]] = time.time()
    return "", 200, {"Cache-Control": "no-store"}


# Front-channel logout: the provider's sign-out page loads this in a hidden frame, with
# this site's session cookie only where the site and the provider are same-site.
@app.route("/frontchannel-logout")
def frontchannel_logout():
    sid = request.args.get("sid")
    if sid and request.args.get("iss") == ISSUER and session.get("sid") == sid:
        session.clear()
    return "", 200, {"Cache-Control": "no-store"}


@app.route("/")
def index():
    return "signed in" if "claims" in session else "signed out"


if __name__ == "__main__":
    app.run(host="127.0.0.1", port=int(os.environ.get("PORT", "8080")))
