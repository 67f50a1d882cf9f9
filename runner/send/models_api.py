"""The provider's live list of models: ``GET {base_url}/models`` with the key, the
OpenAI-compatible endpoint Groq and OpenAI both serve. ``runner models --online`` and
``runner validate --online`` compare it with the catalogue."""

from __future__ import annotations

import contextlib
import json
from typing import Any

import urllib3
from urllib3.exceptions import HTTPError

from runner.errors import RunnerError
from runner.providers.endpoints import Endpoint
from runner.version import __version__


class ModelsApiError(RunnerError):
    """The provider's model list could not be read."""


def live_models(endpoint: Endpoint, timeout: float = 30.0) -> list[str]:
    """The model ids the endpoint lists, sorted; ModelsApiError with the reason otherwise."""
    url = f"{(endpoint.base_url or '').rstrip('/')}/models"
    headers = {"User-Agent": f"runner/{__version__}", "Accept": "application/json"}
    if endpoint.api_key is not None:
        headers["Authorization"] = f"Bearer {endpoint.api_key.reveal()}"
    try:
        response = urllib3.request(
            "GET", url, headers=headers, timeout=timeout, retries=2, redirect=False
        )
    except HTTPError as exc:
        raise ModelsApiError(f"listing the models at {url} failed: {exc}") from None
    payload: Any = None
    with contextlib.suppress(ValueError):
        payload = json.loads(response.data or b"null")
    data = payload.get("data") if isinstance(payload, dict) else None
    if response.status != 200 or not isinstance(data, list):
        reason = ""
        if isinstance(payload, dict) and isinstance(payload.get("error"), dict):
            reason = f": {payload['error'].get('message')}"
        raise ModelsApiError(
            f"listing the models at {url} failed (HTTP {response.status}{reason}); check the "
            f"key in {endpoint.api_key_env or 'the key variable'} and the base URL"
        )
    return sorted({str(m["id"]) for m in data if isinstance(m, dict) and "id" in m})
