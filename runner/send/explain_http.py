"""Provider errors in a sentence a person can act on."""

from __future__ import annotations

import html
import re
from typing import Any

from runner.providers.endpoints import Endpoint
from runner.send.ratelimit import never_fits
from runner.spec.objects import Spec


def provider_message(response: Any) -> str | None:
    """The ``error.message`` of an OpenAI-shaped error body, if there is one."""
    if isinstance(response, dict):
        error = response.get("error")
        if isinstance(error, dict) and error.get("message"):
            return str(error["message"])
        if isinstance(error, str):
            return error
    return None


EXCERPT = 300  # characters of a body that is not JSON kept in a record's error message
_TITLE = re.compile(r"<title[^>]*>(.*?)</title>", re.IGNORECASE | re.DOTALL)
_TAG = re.compile(r"<[^>]+>")


def body_excerpt(text: str | None, content_type: str = "") -> str | None:
    """What an error body that is not JSON says, on one line: a proxy's text/plain 500, or
    the title of an HTML error page. None when it says nothing."""
    if not text or not text.strip():
        return None
    if "html" in content_type.lower() or text.lstrip().startswith("<"):
        title = _TITLE.search(text)
        text = html.unescape(title[1] if title else _TAG.sub(" ", text))
    words = " ".join(text.split())
    if len(words) > EXCERPT:
        words = words[: EXCERPT - 3] + "..."
    return words or None


def explain_http_error(
    status: int | None,
    response: Any,
    endpoint: Endpoint,
    spec: Spec,
    location: str | None = None,
    retried: bool = True,
) -> str:
    """Why a request failed, naming what to check. ``retried``: whether runner sent it more
    than once (a batch line, or a run with --retries 0, was sent once)."""
    said = provider_message(response)
    suffix = f": {said}" if said else ""
    if status is not None and 300 <= status < 400:
        where = f" to {location}" if location else ""
        return (
            f"the provider redirected the request{where} (HTTP {status}); runner does not "
            "follow redirects, so neither the key nor the prompt goes to an address you did "
            "not give: set --base-url (or the spec's base_url) to the new address"
        )
    if status == 401 and endpoint.api_key is None and not endpoint.api_key_env:
        return (
            f"the provider wants an API key (HTTP 401), but none was sent: name the environment "
            "variable that holds it with --api-key-env NAME (or api_key_env under the spec's "
            f"provider){suffix}"
        )
    if status == 401:
        where = f"check {endpoint.api_key_env}" if endpoint.api_key_env else "set api_key_env"
        return f"the provider rejected the API key (HTTP 401); {where}{suffix}"
    if status == 403:
        return f"the API key may not use this model or endpoint (HTTP 403){suffix}"
    if status == 404:
        return (
            f"not found (HTTP 404): unknown model '{spec.model}' or wrong base URL "
            f"{endpoint.base_url}{suffix}"
        )
    if status in (413, 429) and said and never_fits(said):
        return (
            f"the request alone is larger than the provider's token limit for {spec.model} "
            f"(HTTP {status}), so it can never fit: shorten the prompt or lower max_tokens{suffix}"
        )
    if status == 413:
        return f"the request is too large for the provider (HTTP 413){suffix}"
    if status == 429:
        if not retried:
            return f"rate limited (HTTP 429){suffix}"
        return f"still rate limited after every retry (HTTP 429){suffix}"
    if status is not None and 400 <= status < 500:
        return f"the provider rejected the request from {spec.display} (HTTP {status}){suffix}"
    if status is not None and status >= 500:
        after = " after every retry" if retried else ""
        return f"the provider failed (HTTP {status}){after}{suffix}"
    return f"the provider answered with an error{suffix or ' it did not explain'}"
