"""The held-out mistakes: this test only reports the score (see tests/heldout.py); it fails
only when the held-out set itself is broken, never on a miss, so nobody tunes a check to it."""

from __future__ import annotations

from heldout import load_cases, score_all, summary


def test_the_held_out_set_is_well_formed():
    for case in load_cases():
        assert {"name", "set", "line", "fix", "files"} <= case.keys(), case.get("name")
        spec = case["files"][case.get("file", "spec.yaml")]
        lines = case["line"] if isinstance(case["line"], list) else [case["line"]]
        assert all(1 <= n <= len(spec.splitlines()) for n in lines), case["name"]


def test_report_the_held_out_score(capsys):
    outcomes = score_all()
    with capsys.disabled():
        print("\nheld-out mistakes caught with their fix:\n" + summary(outcomes))
    assert len(outcomes) == len(load_cases())
