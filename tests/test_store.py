"""The run directory: one line per record in results.jsonl, torn lines dropped, superseded lines
replaced, plan order when a run ends, and runs of the older one-file-per-record layout."""

import hashlib
import json
import os
import re
import shutil
import stat
import subprocess

import pytest
from helpers import read_records, write_spec

import runner
from runner.errors import RunnerError, RunnerWarning, UsageError
from runner.runs import store as store_module
from runner.runs.store import RecordWriter, RunStore, git_info, record_line_id, write_json_atomic
from runner.spec.chain import RunCases, run_rows
from runner.spec.results_order import ENTRY, HEADER

RUN_FILES = ["manifest.json", "results.jsonl"]


def new_run(tmp_path, manifest=None):
    store = RunStore.create(tmp_path)
    store.write_manifest(manifest or {"run_id": store.run_id, "status": "running"})
    return store


def lines_of(store):
    return [json.loads(line) for line in store.results_path.read_text().splitlines()]


def test_atomic_write_leaves_no_temp_files(tmp_path):
    target = tmp_path / "x.json"
    write_json_atomic(target, {"a": 1})
    write_json_atomic(target, {"a": 2})
    assert json.loads(target.read_text()) == {"a": 2}
    assert [p.name for p in tmp_path.iterdir()] == ["x.json"]


def test_records_are_appended_once_and_rewritten_in_plan_order(tmp_path):
    store = new_run(tmp_path)
    store.save_record({"id": "b", "status": "failed"})
    store.save_record({"id": "a", "status": "ok"})
    store.save_record({"id": "b", "status": "ok"})
    store.close()
    assert [r["id"] for r in lines_of(store)] == ["b", "a", "b"]
    # While appending, readers see each id once, its latest line, in completion order.
    assert list(RunStore.open(store.root).records()) == [
        {"id": "a", "status": "ok"},
        {"id": "b", "status": "ok"},
    ]

    counts = store.finish_results(iter(["b", "a", "not-answered"]))

    assert lines_of(store) == [{"id": "b", "status": "ok"}, {"id": "a", "status": "ok"}]
    assert counts == {"total": 2, "ok": 2, "failed": 0, "invalid_output": 0, "not_sent": 1}
    assert store.read_manifest()["results"] == "final"
    assert sorted(p.name for p in store.root.iterdir()) == RUN_FILES


def test_completed_ids_skip_failures_and_superseded_lines(tmp_path):
    store = new_run(tmp_path)
    store.save_record({"id": "done", "status": "ok"})
    store.save_record({"id": "bad-json", "status": "invalid_output"})
    store.save_record({"id": "retry-me", "status": "failed"})
    store.save_record({"id": "fixed", "status": "failed"})
    store.save_record({"id": "fixed", "status": "ok"})
    store.close()

    done = RunStore.open(store.root).completed_ids()

    assert len(done) == 3
    assert "done" in done and "bad-json" in done and "fixed" in done
    assert "retry-me" not in done and "never-sent" not in done
    assert sorted(done) == ["bad-json", "done", "fixed"]


def test_a_torn_last_line_is_dropped_and_cut_off_before_appending(tmp_path):
    store = new_run(tmp_path)
    store.save_record({"id": "a", "status": "ok"})
    store.close()
    with open(store.results_path, "ab") as handle:
        handle.write(b'{"id": "b", "status": "o')  # a kill in the middle of a write

    resumed = RunStore.open(store.root)
    assert [r["id"] for r in resumed.records()] == ["a"]
    assert "b" not in resumed.completed_ids()
    resumed.save_record({"id": "b", "status": "ok"})
    resumed.close()

    assert lines_of(resumed) == [{"id": "a", "status": "ok"}, {"id": "b", "status": "ok"}]
    assert not resumed.is_final()


def test_a_line_that_is_not_json_is_skipped_by_readers_and_kept_at_the_end(tmp_path):
    """Issue 22.10: the end of a run dropped a line it could not read; it is kept, byte for
    byte, after the records, and named with its line number."""
    store = new_run(tmp_path)
    store.save_record({"id": "a", "status": "ok"})
    store.close()
    garbage = b"\x00\x00\x00 garbage from a power cut \xff\n"
    with open(store.results_path, "ab") as handle:
        handle.write(garbage)

    reopened = RunStore.open(store.root)
    reopened.save_record({"id": "b", "status": "ok"})
    with pytest.warns(RunnerWarning, match=r"results.jsonl:2: warning: invalid UTF-8"):
        assert [r["id"] for r in reopened.records()] == ["a", "b"]
    with pytest.warns(RunnerWarning, match=r"results.jsonl:2: .*kept as it is"):
        reopened.finish_results(iter(["a", "b"]))

    raw = reopened.results_path.read_bytes().splitlines(keepends=True)
    assert [json.loads(line)["id"] for line in raw[:2]] == ["a", "b"]
    assert raw[2:] == [garbage]


def test_resume_after_the_end_appends_and_the_end_puts_plan_order_back(tmp_path):
    store = new_run(tmp_path)
    for record_id, status in (("a", "ok"), ("b", "failed"), ("c", "ok")):
        store.save_record({"id": record_id, "status": status})
    store.finish_results(iter("abc"))
    assert store.is_final()

    resumed = RunStore.open(store.root)
    assert len(resumed.completed_ids()) == 2
    resumed.save_record({"id": "b", "status": "ok"})
    assert not resumed.is_final()
    resumed.close()
    counts = resumed.finish_results(iter("abc"))

    assert [(r["id"], r["status"]) for r in lines_of(resumed)] == [
        ("a", "ok"),
        ("b", "ok"),
        ("c", "ok"),
    ]
    assert counts["ok"] == 3 and counts["failed"] == 0
    assert resumed.count() == 3


def test_rewrite_records_changes_every_record_in_place(tmp_path):
    store = new_run(tmp_path)
    for record_id in "cab":
        store.save_record({"id": record_id, "status": "ok"})
    store.finish_results(iter("abc"))

    changed = RunStore.open(store.root).rewrite_records(lambda r: {**r, "expectations": None})

    assert changed == 3
    assert lines_of(store) == [{"id": i, "status": "ok", "expectations": None} for i in "abc"]
    assert sorted(p.name for p in store.root.iterdir()) == RUN_FILES


def test_a_failing_rewrite_leaves_the_records_as_they_were(tmp_path):
    store = new_run(tmp_path)
    for record_id in "ab":
        store.save_record({"id": record_id, "status": "ok"})
    store.finish_results(iter("ab"))
    before = store.results_path.read_bytes()

    def transform(record):
        if record["id"] == "b":
            raise ValueError("no")
        return {**record, "x": 1}

    with pytest.raises(ValueError):
        store.rewrite_records(transform)

    assert store.results_path.read_bytes() == before
    assert sorted(p.name for p in store.root.iterdir()) == RUN_FILES


def test_the_record_writer_saves_everything_handed_over(tmp_path):
    store = new_run(tmp_path)
    writer = RecordWriter(store, depth=2)
    for i in range(50):
        writer.put({"id": f"r{i:02}", "status": "ok"})
    writer.close()
    store.close()

    assert sorted(r["id"] for r in store.records()) == [f"r{i:02}" for i in range(50)]


def test_a_record_that_cannot_be_saved_stops_the_run_with_a_clear_error(tmp_path):
    store = new_run(tmp_path)
    store.results_path.mkdir()  # results.jsonl cannot be opened as a file
    writer = RecordWriter(store)
    writer.put({"id": "a", "status": "ok"})

    with pytest.raises(RunnerError, match=r"cannot save records in .*: "):
        writer.close()


def legacy_name(record_id):
    """How the older layout named record files (kept here as an independent oracle)."""
    name = re.sub(r"[^A-Za-z0-9._-]+", "-", record_id).strip(".-") or "record"
    if name == record_id and len(name) <= 150:
        return name
    return f"{name[:140]}-{hashlib.sha256(record_id.encode()).hexdigest()[:10]}"


def legacy_run(tmp_path, files, lines):
    """A run directory as the older runner left it: records/<name>.json and results.jsonl."""
    root = tmp_path / "runs" / "20261101T000000Z-abcdef"
    (root / "records").mkdir(parents=True)
    (root / "manifest.json").write_text(json.dumps({"run_id": root.name, "status": "complete"}))
    for record in files:
        path = root / "records" / f"{legacy_name(record['id'])}.json"
        path.write_text(json.dumps(record) + "\n")
    (root / "records" / ".x.json.k1ll3d.tmp").write_text('{"id": "x", "sta')
    (root / "results.jsonl").write_text("".join(json.dumps(r) + "\n" for r in lines))
    return root


def test_a_finished_run_of_the_older_layout_opens_in_its_order_and_loses_its_folder(tmp_path):
    records = [{"id": i, "status": "ok"} for i in ("s/b", "s/a", "../c")]
    root = legacy_run(tmp_path, records, records)

    store = RunStore.open(root)

    assert list(store.records()) == records
    assert sorted(p.name for p in root.iterdir()) == ["manifest.json", "results.jsonl"]
    assert store.read_manifest()["results"] == "final"
    assert list(RunStore.open(root).records()) == records


def test_a_killed_run_of_the_older_layout_keeps_every_record_file(tmp_path):
    """The old writer saved the file, then the line: files win, and files without a line
    (killed in between) are kept; superseded lines go."""
    files = [{"id": "a", "status": "ok"}, {"id": "b", "status": "ok"}, {"id": "c", "status": "ok"}]
    lines = [{"id": "b", "status": "failed"}, {"id": "a", "status": "ok"}]
    root = legacy_run(tmp_path, files, lines)

    store = RunStore.open(root)

    assert list(store.records()) == files[1:2] + files[:1] + files[2:]
    assert not (root / "records").exists()
    assert len(store.completed_ids()) == 3


def test_a_legacy_run_that_cannot_be_converted_is_refused_with_what_to_do(tmp_path):
    root = legacy_run(tmp_path, [{"id": "a", "status": "ok"}], [])
    (root / "results.jsonl").unlink()
    (root / "results.jsonl").mkdir()  # stands for a folder that cannot be written

    with pytest.raises(UsageError, match=r"older runner.*copy it"):
        RunStore.open(root)


def test_readers_see_the_same_records_as_an_independent_reader(tmp_path):
    store = new_run(tmp_path)
    for i in range(300):
        store.save_record({"id": f"r{i}", "status": "failed" if i % 7 else "ok", "n": i})
    for i in range(0, 300, 7):
        store.save_record({"id": f"r{i}", "status": "ok", "n": -i})
    store.close()

    assert {r["id"]: r for r in RunStore.open(store.root).records()} == read_records(store.root)
    assert RunStore.open(store.root).count() == 300


def test_a_reader_leaves_the_temporary_file_of_a_run_finishing_elsewhere(tmp_path):
    store = new_run(tmp_path)
    store.save_record({"id": "a", "status": "ok"})
    store.close()
    rewriting = store.root / ".results.jsonl.x1.tmp"  # another process's rewrite, under way
    rewriting.write_text('{"id": "a"')

    assert [r["id"] for r in RunStore.open(store.root).records()] == ["a"]
    assert rewriting.exists()
    resumed = RunStore.open(store.root)
    assert len(resumed.completed_ids()) == 1  # resuming: no other process may write the run
    assert not rewriting.exists()


@pytest.mark.parametrize("text", ["{not json", "[]", "\udcff"])
def test_a_manifest_that_is_not_one_is_a_usage_error_naming_it(tmp_path, run_cli, text):
    (tmp_path / "manifest.json").write_bytes(text.encode("utf-8", "surrogateescape"))
    with pytest.raises(UsageError, match=r"manifest\.json is not a run manifest"):
        RunStore.open(tmp_path).read_manifest()
    shown = run_cli("export", tmp_path, "--format", "csv", "-o", tmp_path / "x.csv")
    assert shown.exit_code == 2 and "is not a run manifest" in shown.output


@pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")
def test_git_info_reads_a_file_name_that_is_not_utf8(tmp_path):
    """With core.quotePath false, git status prints file names as they are; one that is not
    UTF-8 (or UTF-8 read as cp1252, on Windows) ended the run in UnicodeDecodeError."""

    def git(*args: str) -> None:
        subprocess.run(["git", *args], cwd=tmp_path, check=True, capture_output=True)

    git("init", "-q")
    git(
        "-c",
        "user.name=t",
        "-c",
        "user.email=t@example.com",
        "commit",
        "-q",
        "--allow-empty",
        "-m",
        "start",
    )
    git("config", "core.quotePath", "false")
    try:
        with open(os.path.join(os.fsencode(tmp_path), b"\xff.txt"), "w"):
            pass
    except (OSError, ValueError):
        pytest.skip("this file system keeps only UTF-8 names")
    info = git_info(tmp_path)
    assert info is not None and info["dirty"] is True and len(info["commit"]) == 40


def test_a_whole_last_record_without_its_newline_is_kept_on_resume(tmp_path):
    """A results.jsonl edited by hand may end without a newline: that last record is whole,
    and resuming kept cutting it off as if a kill had torn it (issue 22.10)."""
    store = new_run(tmp_path)
    store.save_record({"id": "a", "status": "ok"})
    store.save_record({"id": "b", "status": "ok"})
    store.close()
    raw = store.results_path.read_bytes()
    store.results_path.write_bytes(raw[:-1])  # no final newline

    reopened = RunStore.open(store.root)
    assert "b" in reopened.completed_ids()
    reopened.save_record({"id": "c", "status": "ok"})
    reopened.close()
    assert [r["id"] for r in lines_of(reopened)] == ["a", "b", "c"]

    torn = RunStore.open(store.root)
    with open(torn.results_path, "ab") as handle:
        handle.write(b'{"id": "d", "sta')  # a kill in the middle of a write
    assert "d" not in torn.completed_ids()
    torn.save_record({"id": "d", "status": "ok"})
    torn.close()
    assert [r["id"] for r in lines_of(torn)] == ["a", "b", "c", "d"]


# ---- results.order: a large run ends without a second copy of results.jsonl


@pytest.fixture
def large(monkeypatch):
    """Every run counts as large: none is rewritten, its readers go through results.order."""
    monkeypatch.setattr(store_module, "REWRITE_LIMIT", 0)


def out_of_order_run(tmp_path, plan="abcd"):
    """A run told its plan, saving b (failed), d, a, b (ok again), c: out of plan order."""
    store = new_run(tmp_path)
    store.plan_order(iter(plan))
    for record_id, status in (("b", "failed"), ("d", "ok"), ("a", "ok"), ("b", "ok"), ("c", "ok")):
        store.save_record({"id": record_id, "status": status})
    return store


def test_a_large_run_ends_without_copying_its_records_and_reads_in_plan_order(tmp_path, large):
    store = out_of_order_run(tmp_path)
    store.close()
    before = store.results_path.read_bytes()
    inode = store.results_path.stat().st_ino

    counts = store.finish_results(iter(()))  # the plan was given first

    # The same file, untouched: no copy of it replaced it.
    assert store.results_path.read_bytes() == before and store.results_path.stat().st_ino == inode
    assert counts == {"total": 4, "ok": 4, "failed": 0, "invalid_output": 0, "not_sent": 0}
    manifest = store.read_manifest()
    assert manifest["results"] == "final" and manifest["results_order"] == "results.order"
    if os.name == "posix":  # offsets and statuses of answers: private like the answers (22.5)
        assert stat.S_IMODE((store.root / "results.order").stat().st_mode) == 0o600
    opened = RunStore.open(store.root)
    assert [(r["id"], r["status"]) for r in opened.records()] == [(i, "ok") for i in "abcd"]
    assert opened.count() == 4 and opened.is_final()
    assert [record_line_id(line) for _, line in opened.record_lines()] == list("abcd")


def test_a_run_saved_in_plan_order_is_neither_copied_nor_given_an_order_file(tmp_path, large):
    store = new_run(tmp_path)
    store.plan_order(iter("abc"))
    for record_id in "abc":
        store.save_record({"id": record_id, "status": "ok"})
    store.close()
    inode = store.results_path.stat().st_ino

    counts = store.finish_results(iter(()))

    assert store.results_path.stat().st_ino == inode
    assert counts["total"] == 3 and counts["not_sent"] == 0
    assert "results_order" not in store.read_manifest()
    assert sorted(p.name for p in store.root.iterdir()) == RUN_FILES
    assert [r["id"] for r in lines_of(store)] == list("abc")


def test_a_small_run_out_of_order_is_rewritten_in_plan_order(tmp_path):
    store = out_of_order_run(tmp_path)
    counts = store.finish_results(iter(()))

    assert [r["id"] for r in lines_of(store)] == list("abcd")
    assert counts["ok"] == 4 and counts["failed"] == 0
    assert sorted(p.name for p in store.root.iterdir()) == RUN_FILES


def test_not_sent_records_and_a_plan_given_only_at_the_end_are_counted(tmp_path, large):
    store = new_run(tmp_path)  # a batch's records: no plan until the end
    for record_id, status in (("c", "invalid_output"), ("a", "failed")):
        store.save_record({"id": record_id, "status": status})

    counts = store.finish_results(iter("abc"))

    assert counts == {"total": 2, "ok": 0, "failed": 1, "invalid_output": 1, "not_sent": 1}
    assert [r["id"] for r in RunStore.open(store.root).records()] == ["a", "c"]


def test_resuming_a_large_run_appends_then_reads_in_plan_order_again(tmp_path, large):
    store = out_of_order_run(tmp_path, plan="abcde")
    store.finish_results(iter(()))

    resumed = RunStore.open(store.root)
    assert "e" not in resumed.completed_ids()
    resumed.plan_order(iter("abcde"))
    assert "results_order" not in resumed.read_manifest()  # results.order is being redone
    resumed.save_record({"id": "e", "status": "ok"})
    resumed.save_record({"id": "a", "status": "failed"})  # a later line replaces an earlier
    assert [r["id"] for r in RunStore.open(store.root).records()] == list("dbcea")
    counts = resumed.finish_results(iter(()))

    reread = RunStore.open(store.root)
    assert [(r["id"], r["status"]) for r in reread.records()] == [
        ("a", "failed"),
        *((i, "ok") for i in "bcde"),
    ]
    assert counts["total"] == 5 and counts["failed"] == 1 and reread.count() == 5


def test_a_kill_while_resuming_a_large_run_loses_nothing(tmp_path, large):
    store = out_of_order_run(tmp_path, plan="abcde")
    store.finish_results(iter(()))
    resumed = RunStore.open(store.root)
    resumed.plan_order(iter("abcde"))
    resumed.save_record({"id": "e", "status": "ok"})
    resumed.close()  # and then the process is killed: no finish
    with open(store.results_path, "ab") as handle:
        handle.write(b'{"id": "x", "sta')

    again = RunStore.open(store.root)
    assert sorted(r["id"] for r in again.records()) == list("abcde")
    again.plan_order(iter("abcde"))
    again.finish_results(iter(()))
    assert [r["id"] for r in RunStore.open(store.root).records()] == list("abcde")


def test_scoring_a_large_run_again_keeps_plan_order_and_drops_the_order_file(tmp_path, large):
    store = out_of_order_run(tmp_path)
    store.finish_results(iter(()))

    changed = RunStore.open(store.root).rewrite_records(lambda r: {**r, "scored": True})

    assert changed == 4
    assert lines_of(store) == [{"id": i, "status": "ok", "scored": True} for i in "abcd"]
    assert "results_order" not in store.read_manifest()
    assert sorted(p.name for p in store.root.iterdir()) == RUN_FILES


def test_an_order_file_that_no_longer_matches_is_not_trusted(tmp_path, large):
    store = out_of_order_run(tmp_path)
    store.finish_results(iter(()))
    with open(store.results_path, "ab") as handle:
        handle.write(b'{"id": "z", "status": "ok"}\n')  # an edit by hand

    with pytest.warns(RunnerWarning, match="does not match results.jsonl"):
        records = list(RunStore.open(store.root).records())

    assert sorted(r["id"] for r in records) == list("abcdz")  # each once, the latest line


def test_chained_cases_read_a_large_run_in_plan_order_with_its_line_numbers(tmp_path, large):
    store = out_of_order_run(tmp_path)
    store.finish_results(iter(()))

    rows = list(run_rows(RunCases("runs/x", store.root)))

    assert [(number, row["id"]) for number, row in rows] == [(3, "a"), (4, "b"), (5, "c"), (2, "d")]


def test_every_reader_of_a_large_run_reads_it_in_plan_order(project, run_cli, large):
    cases = [{"id": f"c{i}", "n": i} for i in range(6)]
    write_spec(project, "count", "Count to {{ n }}.", cases=cases)
    assert run_cli("run", "specs", "--provider", "offline", "-q", "-c", "1").exit_code == 0
    run_dir = next((project / "runs").iterdir())
    planned = [f"count/c{i}" for i in range(6)]
    # The same records saved again in reverse, as answers coming back out of order would be.
    first = list(RunStore.open(run_dir).records())
    store = RunStore.open(run_dir)
    store.plan_order(iter(planned))
    for record in reversed(first):
        store.save_record(record)
    store.finish_results(iter(()))
    assert store.read_manifest()["results_order"] == "results.order"
    assert [r["id"] for r in lines_of(store)] == planned + planned[::-1]

    shown = run_cli("show", run_dir).output
    assert [line.split()[0] for line in shown.splitlines() if line.startswith("count/")] == planned
    run_cli("export", run_dir, "-o", "rows.csv")
    rows = (project / "rows.csv").read_text().splitlines()[1:]
    assert [row.split(",")[0] for row in rows] == planned
    assert [r.id for r in runner.open_run(run_dir).records()] == planned
    assert run_cli("report", run_dir, "-o", "report.html").exit_code == 0
    write_spec(project, "again", "{{ answer }}", cases={"run": "../runs/latest"})
    rendered = json.loads(run_cli("render", "specs/again.yaml").stdout)
    assert [item["id"] for item in rendered] == [f"again/{i}" for i in planned]
    assert run_cli("score", run_dir).exit_code == 0
    assert [r["id"] for r in lines_of(store)] == planned  # scoring wrote them in plan order


def test_an_order_entry_that_spans_more_than_one_line_is_skipped(tmp_path, large):
    store = out_of_order_run(tmp_path)
    store.finish_results(iter(()))
    size = store.results_path.stat().st_size
    with open(store.root / "results.order", "r+b") as order:
        order.seek(HEADER.size)  # the entry of "a": the whole file, as one line
        order.write(ENTRY.pack(0, size, 1, 1))

    assert [r["id"] for r in RunStore.open(store.root).records()] == list("bcd")


def test_a_run_that_saved_nothing_ends_with_an_empty_results_file(tmp_path, large):
    store = new_run(tmp_path)
    store.plan_order(iter("ab"))

    counts = store.finish_results(iter(()))

    assert counts["not_sent"] == 2 and counts["total"] == 0
    assert store.results_path.read_bytes() == b"" and list(store.records()) == []
    assert sorted(p.name for p in store.root.iterdir()) == RUN_FILES
