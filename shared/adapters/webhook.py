"""The webhook handoff: a support ticket POSTed as JSON to the collection's configured HTTPS URL.

The URL comes only from settings (never from a request). Redirects are not followed (a redirect could
point anywhere), the call has a short timeout, and with a secret each ticket is signed:
``X-RAG-Explorer-Signature: t=<unix time>,v1=<hex HMAC-SHA256 of "<t>.<body>">`` so the receiver can
check it came from this deployment and is fresh.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import ssl
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import Any

import shared
from shared.errors import DeliveryError

SIGNATURE_HEADER = "X-RAG-Explorer-Signature"
TIMEOUT_S = 5.0


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None  # a 3xx is then an HTTPError: not delivered


def signature(secret: str, timestamp: int, body: bytes) -> str:
    mac = hmac.new(secret.encode("utf-8"), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"t={timestamp},v1={mac.hexdigest()}"


class WebhookSender:
    """:class:`shared.feedback.TicketSender` over HTTPS with the standard library."""

    def __init__(
        self,
        secret: Callable[[], str | None] = lambda: None,
        *,
        timeout_s: float = TIMEOUT_S,
        ssl_context: ssl.SSLContext | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._secret = secret
        self.timeout_s = timeout_s
        context = ssl_context or ssl.create_default_context()
        self._opener = urllib.request.build_opener(urllib.request.HTTPSHandler(context=context), _NoRedirect)
        self._clock = clock

    def send(self, url: str, ticket: dict[str, object]) -> None:
        if not url.startswith("https://"):
            raise DeliveryError("webhook URLs must be https://")
        body = json.dumps(ticket, ensure_ascii=False).encode("utf-8")
        headers = {"Content-Type": "application/json", "User-Agent": f"rag-explorer/{shared.__version__}"}
        secret = self._secret()
        if secret:
            headers[SIGNATURE_HEADER] = signature(secret, int(self._clock()), body)
        # the scheme is checked above: https only
        request = urllib.request.Request(url, data=body, headers=headers, method="POST")  # noqa: S310
        try:
            with self._opener.open(request, timeout=self.timeout_s) as response:
                status = response.status
        except urllib.error.HTTPError as exc:
            raise DeliveryError(f"the webhook answered {exc.code}") from None
        except (urllib.error.URLError, OSError, ValueError) as exc:
            reason = getattr(exc, "reason", exc)
            raise DeliveryError(f"the webhook could not be reached: {reason}") from None
        if not 200 <= status < 300:
            raise DeliveryError(f"the webhook answered {status}")
