"""A model whose requests all fail alike stops sending (issue 21.5).

A wrong key, a retired model or a model the endpoint does not know fails every request the
same way: sending the other 99,997 requests of a run hammers the provider for nothing. Some
answers say so whatever the request is; they are *request-independent*:

- 401 (the key is wrong, revoked or missing) and 403 (the key may not use this model or this
  endpoint, or the account's place is not served);
- 404 (no such model at this endpoint, or a wrong base URL);
- 400 with the code ``model_decommissioned`` (Groq's answer for a retired model);
- 429 with the code or type ``insufficient_quota`` (OpenAI's "You exceeded your current
  quota, please check your plan and billing details": no wait makes it pass).

Sources (checked 2026-12-08): Groq's error codes, https://console.groq.com/docs/errors;
OpenAI's error codes, https://platform.openai.com/docs/guides/error-codes; Groq's message for
a retired model, "The model gemma2-9b-it has been decommissioned and is no longer supported",
as users quote it (https://github.com/RightNow-AI/openfang/issues/834).

After ``ALIKE`` requests of one model (at one endpoint) in a row end with the same such cause,
the model sends nothing more in the run: its other requests are left unsent (no record), so
``runner run --resume`` sends them once the cause is fixed. Other models go on. So that at
most ``PENDING`` are ever sent, a model's requests are held back while a verdict is pending:
until one of its answers clears it, and again whenever its latest answers are such failures,
its requests in flight and its failures in a row are at most ``PENDING`` together. A model
whose answers are slow thus starts with ``PENDING`` requests in flight, not ``--concurrency``,
until its first answer is in (for a streamed request: until its first text arrives).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Any

from runner.providers.catalogue import catalogue_named
from runner.providers.endpoints import Endpoint
from runner.send.explain_http import provider_message
from runner.send.ratelimit import OUT_OF_CREDIT
from runner.send.transport import HttpResult

ALIKE = 3  # request-independent failures in a row that stop a model's requests
# Requests of a model in flight, or failed alike in a row, while its verdict is pending: at
# most this many are sent before a model whose every request fails is stopped.
PENDING = 5

RETIRED = "model_decommissioned"


@dataclass(frozen=True)
class Cause:
    """Why a request failed, when any request of its model would have failed the same way."""

    status: int
    code: str | None  # the error's code (or type) as the provider gave it
    said: str | None  # the provider's message

    @property
    def key(self) -> tuple[int, str]:
        """What two failures share when they fail alike."""
        return self.status, self.code or self.said or ""

    @property
    def resumable(self) -> bool:
        """Whether the fix leaves the spec as it is (a key, credit), so --resume can finish:
        a model that is retired or unknown is changed in the spec, which makes a new run."""
        return self.status in (401, 403) or self.code == OUT_OF_CREDIT


def request_independent(result: HttpResult) -> Cause | None:
    """The cause of a failed answer if no request to the same model could have succeeded."""
    status = result.status
    if status is None or status < 400:
        return None
    error = _error_object(result.text)
    code = error.get("code") or error.get("type")
    code = str(code) if code is not None else None
    said = provider_message({"error": error}) if error else None
    if status in (401, 403, 404):
        return Cause(status, code, said)
    if status == 400 and code == RETIRED:
        return Cause(status, code, said)
    if status == 429 and OUT_OF_CREDIT in (error.get("code"), error.get("type")):
        return Cause(status, OUT_OF_CREDIT, said)
    return None


def _error_object(text: str | None) -> dict[str, Any]:
    try:
        body = json.loads(text or "")
    except ValueError:
        return {}
    error = body.get("error") if isinstance(body, dict) else None
    return error if isinstance(error, dict) else {}


@dataclass(frozen=True)
class Refusal:
    """A model stopped because its requests failed alike: the cause, and the fix."""

    model: str
    endpoint: Endpoint
    cause: Cause
    count: int  # requests that failed alike before it stopped
    replacement: str | None = None  # the model to use instead, when one is known

    @property
    def resumable(self) -> bool:
        return self.cause.resumable

    def describe(self) -> str:
        """One sentence: which model, what the provider said, and what to do."""
        return (
            f"every request to {self.model} ({self.endpoint.name}) failed alike, so its "
            f"other requests were not sent: {self._what()}; fix: {self.fix()}"
        )

    def _what(self) -> str:
        cause = self.cause
        said = f": {_one_line(cause.said).rstrip('.')}" if cause.said else ""
        code = f" {cause.code}" if cause.code else ""
        env = self.endpoint.api_key_env
        if cause.status == 401:
            key = f"the API key in {env}" if env else "the request without an API key"
            return f"the provider refused {key} (HTTP 401{code}){said}"
        if cause.status == 403:
            return f"the API key may not use {self.model} here (HTTP 403{code}){said}"
        if cause.status == 404:
            return f"{self.model} is not found at {self.endpoint.base_url} (HTTP 404{code}){said}"
        if cause.code == RETIRED:
            return f"{self.model} is retired (HTTP 400 {RETIRED}){said}"
        return f"the account has no credit left (HTTP 429 {OUT_OF_CREDIT}){said}"

    def fix(self) -> str:
        cause = self.cause
        env = self.endpoint.api_key_env
        if cause.status == 401:
            if env:
                return f"put a valid key in the environment variable {env}"
            return (
                "name the environment variable that holds the key with --api-key-env NAME "
                "(or api_key_env under the spec's provider)"
            )
        if cause.status == 403:
            return (
                f"use a key allowed to use {self.model} (in {env or 'the key variable'}), or "
                "another model"
            )
        instead = (
            f"replace {self.model} with {self.replacement} in the spec"
            if self.replacement
            else None
        )
        if cause.status == 404:
            if self.replacement:
                return (
                    f"check the model id in the spec: did you mean {self.replacement}? (and "
                    "the base URL)"
                )
            return (
                "check the model id (the provider's GET /models lists the ones it serves) "
                "and the base URL"
            )
        if cause.code == RETIRED:
            return instead or (
                f"replace {self.model} in the spec with a current model (the provider's "
                "message or its deprecations page names the replacement)"
            )
        return "add credit, or raise the spending limit, in the provider's console"

    def to_json(self) -> dict[str, Any]:
        """What the manifest says of the model stopped, and how to go on once fixed."""
        return {
            "reason": "failing_alike",
            "model": self.model,
            "provider": self.endpoint.name,
            "http_status": self.cause.status,
            "code": self.cause.code,
            "message": self.describe(),
            "fix": self.fix(),
            "failed_alike": self.count,
            "resume": self.resumable,
            "then": (
                "once fixed, finish the run with: runner run --resume RUN_DIR"
                if self.resumable
                else "change the spec and start a new run (a resumed run sends the same requests)"
            ),
        }


def _one_line(text: str) -> str:
    return " ".join(text.split())


def catalogue_suggestion(endpoint: Endpoint, model: str) -> str | None:
    """The model to use instead of ``model``, from the provider's catalogue: the replacement
    of a retired or deprecated id, or the closest current id of one the table does not know.
    None for a provider at its own base URL (its models are not in the table)."""
    catalogue = catalogue_named(endpoint.name, endpoint.base_url)
    if catalogue is None:
        return None
    found = catalogue.get(model)
    if found is not None:
        return found.replacement
    closest = catalogue.closest(model)
    return closest[0] if closest else None


class _Model:
    """What the breaker knows of one model's requests."""

    def __init__(self) -> None:
        self.in_flight = 0
        self.cleared = False  # an answer showed the model and its key work
        self.streak = 0  # request-independent failures in a row, alike
        self.cause: Cause | None = None
        self.refusal: Refusal | None = None


class Breaker:
    """The requests of each model, at most ``pending`` at once while a verdict is pending,
    and stopped once ``alike`` of them in a row failed alike. Safe to call from every worker
    thread."""

    def __init__(
        self,
        cancelled: threading.Event,
        alike: int = ALIKE,
        pending: int = PENDING,
        replacement: Callable[[Endpoint, str], str | None] | None = catalogue_suggestion,
    ):
        self._cancelled = cancelled
        self._alike = alike
        self._pending = max(pending, alike)
        self._replacement = replacement
        self._cond = threading.Condition()
        self._models: dict[Hashable, _Model] = {}

    def enter(self, key: Hashable) -> bool:
        """Wait until one more request of ``key`` may go out; False when the model is stopped
        (or the run is), and the request must not be sent. A True must be matched by one
        ``leave``."""
        with self._cond:
            model = self._models.setdefault(key, _Model())
            while True:
                if model.refusal is not None or self._cancelled.is_set():
                    return False
                trusted = model.cleared and model.streak == 0
                if trusted or model.streak + model.in_flight < self._pending:
                    model.in_flight += 1
                    return True
                self._cond.wait(0.25)  # woken by an answer, or looked at again

    def leave(
        self, key: Hashable, endpoint: Endpoint, model_id: str, result: HttpResult | None
    ) -> None:
        """A request of ``key`` entered earlier is over: ``result`` is its final answer, or
        None when it got none (the run stopped first)."""
        with self._cond:
            model = self._models[key]
            model.in_flight -= 1
            if result is not None:
                self._learn(model, endpoint, model_id, request_independent(result))
            self._cond.notify_all()

    def clear(self, key: Hashable) -> None:
        """``key``'s model answers (a stream's first text came): no verdict is pending."""
        with self._cond:
            model = self._models.setdefault(key, _Model())
            model.cleared, model.streak, model.cause = True, 0, None
            self._cond.notify_all()

    def at_first_text(
        self, key: Hashable, sink: Callable[[str], None] | None
    ) -> Callable[[str], None]:
        """A stream's text sink that clears ``key`` at the first text, then hands each piece
        to ``sink``: a streamed model is cleared long before its whole answer is in."""
        first = [True]

        def on_text(piece: str) -> None:
            if first[0]:
                first[0] = False
                self.clear(key)
            if sink is not None:
                sink(piece)

        return on_text

    def _learn(self, model: _Model, endpoint: Endpoint, model_id: str, cause: Cause | None) -> None:
        if cause is None:
            model.cleared, model.streak, model.cause = True, 0, None
            return
        if model.cause is not None and model.cause.key == cause.key:
            model.streak += 1
        else:
            model.cause, model.streak = cause, 1
        if model.streak >= self._alike and model.refusal is None:
            found = self._replacement(endpoint, model_id) if self._replacement else None
            model.refusal = Refusal(model_id, endpoint, cause, model.streak, found)

    def stopped(self, key: Hashable) -> bool:
        """Whether ``key``'s requests failed alike and it sends nothing more."""
        with self._cond:
            model = self._models.get(key)
            return model is not None and model.refusal is not None

    def refusals(self) -> list[Refusal]:
        """Every model stopped so far, in no particular order."""
        with self._cond:
            return [m.refusal for m in self._models.values() if m.refusal is not None]

    def wake(self) -> None:
        """Let every waiting request look again (the run is stopping)."""
        with self._cond:
            self._cond.notify_all()
