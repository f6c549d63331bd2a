"""Schemathesis hooks: every request authenticated the way the product's
callers authenticate it (`cargo xtask test` runs schemathesis with these;
`backend/examples/api_fuzz_target.rs` is the backend they talk to).

- PBX webhooks (`/pbx/{account_id}/...`): the provisioned account, and the
  exact bytes sent signed: `X-Callcard-Timestamp` and
  `X-Callcard-Signature: v1=hex(HMAC-SHA256(secret, "<ts>.<body>"))`.
- Widget calls: a fresh Kommo one-time token per case (`X-Auth-Token`,
  HS256 with the integration secret, a new `jti` each time) for the
  account's admin, with the account's `Origin`.
- Feeds: a ticket traded for such a token at `POST /widget/ticket`, renewed
  before it expires.
- Operator endpoints: `Authorization: Bearer <ops token>`.

The last two are the document's security schemes: they are set through
schemathesis' auth, so its `ignored_auth` check can send each such operation
without them, and with wrong ones, and expect a refusal.
- Kommo's webhooks: the account's webhook path, with its secret.

What the generator chose otherwise stays: bodies, query values, ids in
paths other than the account. A long poll's `wait` is kept to 0-1 s so the
run stays short.
"""

import base64
import hashlib
import hmac
import json
import os
import time
import urllib.parse
import uuid

import sys

import requests
import schemathesis

if sys.version_info[:2] == (3, 11) and sys.version_info < (3, 11, 8):
    # CPython 3.11 before 3.11.8 may fail `ast.parse` deep in a recursion
    # ("AST constructor recursion depth mismatch", python/cpython#106905)
    # when hypothesis describes a filter's lambda for a strategy's repr; the
    # description is cosmetic, so it is skipped.
    from hypothesis.internal import lambda_sources

    lambda_sources.lambda_description = lambda f: "lambda"

TARGET = json.loads(os.environ["CALLCARD_FUZZ_TARGET"])
_ticket = {"value": None, "expires_at": 0}
# The one-time tokens this file minted: a case replayed (shrinking, checks'
# probes) carries a used one, which is swapped for a fresh one when sent.
_minted = set()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def one_time_token() -> str:
    now = int(time.time())
    claims = {
        "iss": TARGET["origin"],
        "aud": TARGET["backend_url"],
        "jti": str(uuid.uuid4()),
        "iat": now,
        "nbf": now,
        "exp": now + 60,
        "account_id": TARGET["account_id"],
        "user_id": TARGET["user_id"],
    }
    signing_input = _b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode()) + "." + _b64(json.dumps(claims).encode())
    signature = hmac.new(TARGET["integration_secret"].encode(), signing_input.encode(), hashlib.sha256).digest()
    token = signing_input + "." + _b64(signature)
    _minted.add(token)
    return token


def feed_ticket() -> str:
    if _ticket["value"] is None or _ticket["expires_at"] - 30_000 < time.time() * 1000:
        answer = requests.post(
            TARGET["backend_url"] + "/widget/ticket",
            headers={"X-Auth-Token": one_time_token(), "Origin": TARGET["origin"]},
            timeout=10,
        )
        answer.raise_for_status()
        ticket = answer.json()
        _ticket.update(value=ticket["ticket"], expires_at=ticket["expires_at"])
    return _ticket["value"]


def body_bytes(case) -> bytes:
    body = case.body
    if isinstance(body, bytes):
        return body
    if body is None or type(body).__name__ == "NotSet":
        return b""
    return json.dumps(body, default=str).encode()


@schemathesis.auth(refresh_interval=None)
class DeclaredCredentials:
    """The credentials the document declares as security schemes, set
    through schemathesis' auth so that its `ignored_auth` check can take them
    away and see the operation refuse: a fresh one-time token per case for
    the widget's calls, the bearer token for the operator's."""

    def get(self, case, context):
        path = case.operation.path
        if path.startswith("/ops/"):
            return ("Authorization", "Bearer " + TARGET["ops_token"])
        if path in (
            "/widget/ticket",
            "/widget/settings",
            "/widget/status",
            "/widget/calls/{call_id}/result",
            "/widget/calls/originate",
            "/widget/log-settings",
            "/widget/log-settings/account",
        ):
            return ("X-Auth-Token", one_time_token())
        return None

    def set(self, case, data, context):
        if data is not None:
            name, value = data
            case.headers = {**(case.headers or {}), name: value}


@schemathesis.hook
def before_call(context, case, kwargs):
    path = case.operation.path
    headers = case.headers if case.headers is not None else {}
    if path == "/pbx/{account_id}/route":
        # Signed over the raw query string, encoded here as requests will.
        case.path_parameters = {**(case.path_parameters or {}), "account_id": TARGET["account_id"]}
        raw = urllib.parse.urlencode(case.query or {}, doseq=True).encode()
        timestamp = str(int(time.time()))
        digest = hmac.new(TARGET["webhook_secret"].encode(), timestamp.encode() + b"." + raw, hashlib.sha256)
        headers["X-Callcard-Timestamp"] = timestamp
        headers["X-Callcard-Signature"] = "v1=" + digest.hexdigest()
    elif path.startswith("/pbx/"):
        case.path_parameters = {**(case.path_parameters or {}), "account_id": TARGET["account_id"]}
        raw = body_bytes(case)
        case.body = raw
        timestamp = str(int(time.time()))
        digest = hmac.new(TARGET["webhook_secret"].encode(), timestamp.encode() + b"." + raw, hashlib.sha256)
        headers["X-Callcard-Timestamp"] = timestamp
        headers["X-Callcard-Signature"] = "v1=" + digest.hexdigest()
        headers["Content-Type"] = "application/json"
    elif path in ("/widget/feed", "/widget/feed/poll", "/widget/calls"):
        case.query = {**(case.query or {}), "ticket": feed_ticket()}
        wait = case.query.get("wait")
        if wait is not None and str(wait).strip().isdigit() and int(str(wait).strip()) > 1:
            case.query["wait"] = "1"
    elif path.startswith("/widget/"):
        # Not a credential: the token's account must be the Origin's.
        headers["Origin"] = TARGET["origin"]
        if headers.get("X-Auth-Token") in _minted:
            headers["X-Auth-Token"] = one_time_token()
    elif path == "/kommo/{account_id}/hooks/{secret}" and TARGET.get("kommo_hook"):
        # .../kommo/<account>/hooks/<secret>
        parts = TARGET["kommo_hook"].rstrip("/").split("/")
        case.path_parameters = {"account_id": int(parts[-3]), "secret": parts[-1]}
    case.headers = headers
