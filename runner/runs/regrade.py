"""Asking judges again, outside a run: ``runner score`` grades saved answers with the judges.

A judge request goes through the same sender as a run's (``runner/runs/execute.py``): the
response cache answers every judge request that is the same as before, so only the verdicts
whose judge spec or answer changed are sent; the run's own settings (provider override,
retries, limits, cache mode, concurrency) apply. Records are judged by a pool of the run's
concurrency, a bounded window ahead of the one being written, so the run's order is kept and
memory does not grow with the run.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, TypeVar

from runner.providers.endpoints import Endpoint, resolve_endpoint
from runner.runs.cache import ResponseCache, cache_path_for
from runner.runs.execute import RunSettings, _Sender
from runner.runs.judging import judge_specs
from runner.spec.cases import Case
from runner.spec.objects import Spec
from runner.spec.project import find_project_root
from runner.spec.render import Request

T = TypeVar("T")
R = TypeVar("R")


class Regrader:
    """Judges records of specs with judges; resolves every judge's endpoint (and key) first."""

    def __init__(self, specs: Iterable[Spec], settings: RunSettings):
        specs = list(specs)
        judges = judge_specs(specs)
        providers: dict[Any, Endpoint] = {}
        for judge in judges:
            if judge.provider not in providers:
                providers[judge.provider] = resolve_endpoint(
                    judge.provider,
                    settings.provider,
                    project=find_project_root(judge.path),
                    what=judge.display,
                )
        self._endpoints = {
            spec.name: {path: providers[judge.provider] for path, judge in spec.judges.items()}
            for spec in specs
        }
        answers = None
        if judges and settings.cache != "off" and not all(e.offline for e in providers.values()):
            answers = ResponseCache(cache_path_for(specs[0].path), settings.cache)
        self._sender = _Sender(settings, answers) if judges else None
        self._concurrency = max(settings.concurrency, 1)

    def judged(
        self, spec: Spec, record: dict[str, Any], variables: Mapping[str, Any], case: Case
    ) -> dict[str, Any]:
        """``record`` with the verdicts of its spec's judges (unchanged without judges)."""
        if self._sender is None or not spec.judges:
            return record
        request = Request(spec, variables, record.get("request") or {}, case)
        return self._sender.judged(request, self._endpoints[spec.name], record)

    def in_order(self, items: Iterable[T], judge: Callable[[T], R]) -> Iterator[R]:
        """``judge(item)`` for each item, in order, several at a time (a window of twice the
        concurrency ahead)."""
        if self._sender is None:
            yield from map(judge, items)
            return
        window: deque[Future[R]] = deque()
        with ThreadPoolExecutor(self._concurrency, thread_name_prefix="runner-judge") as pool:
            for item in items:
                window.append(pool.submit(judge, item))
                if len(window) >= 2 * self._concurrency:
                    yield window.popleft().result()
            while window:
                yield window.popleft().result()

    def close(self) -> None:
        if self._sender is not None:
            self._sender.close()
