"""Verdicts: how a judge's answer becomes a check result, and the pass rates of judges.

A judge (``expect: - judge: PATH``, see ``runner/spec/judges.py``) answers ``{"pass": bool,
"score": number, "reason": str}``. Its verdict becomes a check result like any other:
``check: judge``, ``target`` the judge spec, the judge's ``reason`` in ``message`` and its
``score`` kept. Until a judge has answered, the result is pending (failed, saying why), so a
record's ``expectations`` always lists every check in the spec's order.

Nothing here sends anything: ``runner/runs/judging.py`` asks the judges and hands their records
to ``verdict``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from runner.grade.expect import CheckResult, not_judged
from runner.spec.chain import record_model
from runner.spec.expectations import JUDGE_KIND, Check
from runner.spec.judges import pass_rule, verdict_rule


def no_answer(check: Check) -> CheckResult:
    return not_judged(check, "no answer to judge (the request failed)")


def verdict(check: Check, judge_record: Mapping[str, Any]) -> CheckResult:
    """The check result a judge's record gives: its verdict by the check's rule, or a failure
    saying why the judge gave none."""
    target, expected = check.target, verdict_rule(check)
    output = judge_record.get("output")
    if not isinstance(output, dict):
        error = judge_record.get("error") or {}
        reason = error.get("message") if isinstance(error, dict) else None
        return CheckResult(
            JUDGE_KIND, target, expected, None, False, f"the judge gave no verdict: {reason}"
        )
    parsed = output.get("parsed")
    if parsed is None and isinstance(output.get("content"), str):
        try:
            parsed = json.loads(output["content"])
        except ValueError:
            parsed = None
    if not isinstance(parsed, dict) or not isinstance(parsed.get("pass"), bool):
        shown = json.dumps(parsed if parsed is not None else output.get("content"))[:120]
        return CheckResult(
            JUDGE_KIND,
            target,
            expected,
            parsed,
            False,
            f"the judge's answer is not a verdict (no 'pass' true or false): {shown}",
        )
    score = parsed.get("score")
    score = score if isinstance(score, int | float) and not isinstance(score, bool) else None
    reason = parsed.get("reason")
    passed = _passes(check, parsed["pass"], score)
    message = reason if isinstance(reason, str) and reason.strip() else "(no reason given)"
    actual = {"pass": parsed["pass"], "score": score, "reason": reason}
    return CheckResult(JUDGE_KIND, target, expected, actual, passed, message, score)


def _passes(check: Check, said: bool, score: float | None) -> bool:
    rule = pass_rule(check.pass_if, check.threshold)
    if rule == "pass":
        return said
    above = score is not None and check.threshold is not None and score >= check.threshold
    return above if rule == "score" else (said and above)


def with_results(
    expectations: Mapping[str, Any], results: Mapping[int, CheckResult]
) -> dict[str, Any]:
    """``expectations`` with the checks at the given indexes replaced, totals recounted."""
    checks = list(expectations.get("checks") or [])
    for index, result in results.items():
        checks[index] = result.to_json()
    failed = sum(not c.get("passed") for c in checks)
    return {"passed": failed == 0, "total": len(checks), "failed": failed, "checks": checks}


# ---- pass rates


@dataclass
class JudgeRate:
    """Verdicts of one judge on one model's answers."""

    verdicts: int = 0
    passed: int = 0
    no_verdict: int = 0  # the judge was not asked, or did not answer a verdict

    @property
    def pass_rate(self) -> float | None:
        return self.passed / self.verdicts if self.verdicts else None

    def to_json(self) -> dict[str, Any]:
        return {"verdicts": self.verdicts, "passed": self.passed, "no_verdict": self.no_verdict}


@dataclass
class JudgeTally:
    """Pass rates per judge and model, and what the judges' requests cost, filled one record
    at a time (memory grows with judges x models, not with the run)."""

    rates: dict[tuple[str, str], JudgeRate] = field(default_factory=dict)
    requests: int = 0
    sent: int = 0  # went to a provider (not the cache, a cassette or the offline provider)
    cached: int = 0
    offline: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0

    def add(self, record: Mapping[str, Any]) -> None:
        model = record_model(record) or "?"
        for result in judge_results(record):
            rate = self.rates.setdefault((judge_label(result), model), JudgeRate())
            if isinstance(result.get("actual"), dict) and "pass" in result["actual"]:
                rate.verdicts += 1
                rate.passed += bool(result.get("passed"))
            else:
                rate.no_verdict += 1
        for judged in record.get("judges") or ():
            if not isinstance(judged, dict):
                continue
            self.requests += 1
            self.cached += bool(judged.get("cached"))
            # An offline answer replayed from a cassette counts as replayed, not as offline.
            self.offline += bool(judged.get("offline")) and not judged.get("cached")
            self.sent += not (judged.get("cached") or judged.get("offline")) and bool(
                judged.get("attempts")
            )
            usage = judged.get("usage")
            if isinstance(usage, dict):
                self.prompt_tokens += int(usage.get("prompt_tokens") or 0)
                self.completion_tokens += int(usage.get("completion_tokens") or 0)

    @property
    def without_verdict(self) -> int:
        """Judge checks that have no verdict (not asked yet, or no verdict in the answer)."""
        return sum(rate.no_verdict for rate in self.rates.values())

    def describe(self) -> list[str]:
        """Summary lines: one per judge and model, then the judges' requests."""
        lines = []
        for (judge, model), rate in sorted(self.rates.items()):
            shown = "no verdict" if rate.pass_rate is None else f"{100 * rate.pass_rate:.0f}%"
            line = f"judge {judge} on {model}: {rate.passed} of {rate.verdicts} passed ({shown})"
            if rate.no_verdict:
                line += f", {rate.no_verdict} without a verdict"
            lines.append(line)
        if self.requests:
            lines.append(
                f"judge requests: {self.requests} ({self.sent} sent, {self.cached} from cache, "
                f"{self.offline} offline); tokens: {self.prompt_tokens} prompt, "
                f"{self.completion_tokens} completion"
            )
        return lines

    def to_json(self) -> dict[str, Any]:
        return {
            "rates": [
                {"judge": judge, "model": model, **rate.to_json()}
                for (judge, model), rate in sorted(self.rates.items())
            ],
            "requests": self.requests,
            "sent": self.sent,
            "cached": self.cached,
            "offline": self.offline,
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
        }


def judge_label(result: Mapping[str, Any]) -> str:
    """A judge check as people tell it apart: its judge, and its rule when not the default."""
    target = str(result.get("target"))
    expected = result.get("expected")
    if not isinstance(expected, dict) or expected == {"pass": True}:
        return target
    rule = ", ".join(f"{k} {'true' if v is True else v}" for k, v in expected.items())
    return f"{target} ({rule})"


def judge_results(record: Mapping[str, Any]) -> Iterable[Mapping[str, Any]]:
    """The judge checks among a record's expectation results."""
    results = record.get("expectations")
    if not isinstance(results, dict):
        return ()
    return [
        c
        for c in results.get("checks") or ()
        if isinstance(c, dict) and c.get("check") == JUDGE_KIND
    ]


def tally(records: Iterable[Mapping[str, Any]]) -> JudgeTally:
    counts = JudgeTally()
    for record in records:
        counts.add(record)
    return counts
