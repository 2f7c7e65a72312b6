#!/usr/bin/python3
# What an application behind mod_auth_openidc receives: the claims as OIDC_CLAIM_*
# environment variables (objects and lists as JSON text).
import json
import os

PREFIX = "OIDC_CLAIM_"
claims = {name[len(PREFIX):]: value for name, value in os.environ.items() if name.startswith(PREFIX)}
print("Content-Type: application/json; charset=utf-8")
print()
print(json.dumps({"remote_user": os.environ.get("REMOTE_USER"), "claims": claims}, ensure_ascii=False))
