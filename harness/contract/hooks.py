"""Schemathesis hooks of the contract test (harness/contract/main.ts loads them with SCHEMATHESIS_HOOKS).

The webhook routes verify a Standard Webhooks signature before they read the
body, so unsigned generated requests would all stop at 401 and the body's
schema would never be tested. This signs each request to an operation that
declares a `webhook-signature` header with WEBHOOK_SECRET, over the exact
bytes sent, so the route goes on to its body and its business rules.
Requests whose headers were generated to violate the schema (missing,
empty, a timestamp that is no number) go unsigned, as generated: the API
must reject those. Requests whose body was generated to violate it are
signed, so that the body's validation, not the signature, rejects them.

The bearer tokens of the other routes are not set here: schemathesis.toml
sends them as configured headers (API_TOKEN, USER_TOKEN from main.ts), which
schemathesis counts as explicit credentials, so its ignored_auth check sends
each request again without them and with a bad one and expects a 401. A
header set here would count as generated, and a 2xx with it as a failure.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import time
import uuid
from typing import Any

import requests
import schemathesis
from requests.auth import AuthBase
from schemathesis.core.parameters import ParameterLocation


def _key(secret: str) -> bytes:
    return base64.b64decode(secret.removeprefix("whsec_"))


def sign(secret: str, webhook_id: str, timestamp: str, body: bytes) -> str:
    """`v1,<base64 HMAC-SHA256 of id.timestamp.body>`, as harness/webhooks/send.ts's sender signs."""
    digest = hmac.new(_key(secret), f"{webhook_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    return f"v1,{base64.b64encode(digest).decode()}"


class StandardWebhookSignature(AuthBase):
    """Signs a prepared request: requests calls it once the body is serialized, so the signature covers the bytes on the wire."""

    def __init__(self, secret: str) -> None:
        self.secret = secret

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        body = request.body or b""
        # Bytes as sent: a negative case's body need not be UTF-8, and the API then rejects the signature.
        raw = body.encode() if isinstance(body, str) else bytes(body)
        # A generated id is kept (any non-empty string is one); the timestamp must be now to be accepted.
        webhook_id = request.headers.get("webhook-id") or f"msg_{uuid.uuid4().hex}"
        timestamp = str(int(time.time()))
        request.headers["webhook-id"] = webhook_id
        request.headers["webhook-timestamp"] = timestamp
        request.headers["webhook-signature"] = sign(self.secret, webhook_id, timestamp, raw)
        return request


def _is_signed(case: Any) -> bool:
    return any(header.name.lower() == "webhook-signature" for header in case.operation.headers)


@schemathesis.hook
def before_call(context: Any, case: Any, kwargs: dict[str, Any]) -> None:
    if not _is_signed(case):
        return
    meta = case.meta
    if meta is not None and meta.is_negative_at(ParameterLocation.HEADER):
        return
    kwargs["auth"] = StandardWebhookSignature(os.environ["WEBHOOK_SECRET"])
