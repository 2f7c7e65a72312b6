#!/usr/bin/python3
# An application behind mod_auth_openidc calling the window's API with the person's access
# token, which the module passes as OIDC_access_token (a JWT for the API).
import os
import sys
import urllib.error
import urllib.request

request = urllib.request.Request(
    f"{os.environ['API_IDENTIFIER']}/orders",
    headers={"Authorization": f"Bearer {os.environ['OIDC_access_token']}"},
)
try:
    with urllib.request.urlopen(request, timeout=5) as answer:
        status, body = answer.status, answer.read()
except urllib.error.HTTPError as err:
    status, body = err.code, err.read()
print(f"Status: {status}")
print("Content-Type: application/json")
print()
sys.stdout.flush()
sys.stdout.buffer.write(body)
