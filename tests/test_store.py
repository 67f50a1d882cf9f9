"""The run directory: atomic writes, safe names, results.jsonl rebuilt without duplicates."""

import json

import pytest

from runner.errors import RunnerError
from runner.store import RecordWriter, RunStore, safe_file_name, write_json_atomic


def test_safe_file_name_cannot_escape():
    assert safe_file_name("../../etc/passwd").startswith("etc-passwd-")
    assert safe_file_name("a/b\\c").startswith("a-b-c-")
    assert safe_file_name("..").startswith("record-")
    assert "/" not in safe_file_name("/abs/path")
    assert safe_file_name("plain-name_1.2") == "plain-name_1.2"


def test_ids_that_clean_up_alike_get_different_files():
    names = {safe_file_name(i) for i in ("a/b", "a-b", "a b", "a\\b", "a" * 200, "a" * 201)}
    assert len(names) == 6
    assert all(len(n) <= 151 for n in names)


def test_atomic_write_leaves_no_temp_files(tmp_path):
    target = tmp_path / "x.json"
    write_json_atomic(target, {"a": 1})
    write_json_atomic(target, {"a": 2})
    assert json.loads(target.read_text()) == {"a": 2}
    assert [p.name for p in tmp_path.iterdir()] == ["x.json"]


def test_results_rewritten_in_plan_order_without_duplicates(tmp_path):
    store = RunStore.create(tmp_path)
    store.save_record({"id": "b", "status": "failed"})
    store.save_record({"id": "a", "status": "ok"})
    store.save_record({"id": "b", "status": "ok"})
    lines = (store.root / "results.jsonl").read_text().splitlines()
    assert len(lines) == 3
    counts = store.rewrite_results(iter(["b", "a", "not-answered"]))
    records = [json.loads(line) for line in (store.root / "results.jsonl").read_text().splitlines()]
    assert records == [{"id": "b", "status": "ok"}, {"id": "a", "status": "ok"}]
    assert counts == {"total": 2, "ok": 2, "failed": 0, "invalid_output": 0, "not_sent": 1}


def test_completed_ids_skip_failures(tmp_path):
    store = RunStore.create(tmp_path)
    store.save_record({"id": "done", "status": "ok"})
    store.save_record({"id": "bad-json", "status": "invalid_output"})
    store.save_record({"id": "retry-me", "status": "failed"})
    (store.records_dir / "half.json").write_text('{"id": "half", "sta')
    assert store.completed_ids() == {"done", "bad-json"}


def test_the_record_writer_saves_everything_handed_over(tmp_path):
    store = RunStore.create(tmp_path)
    writer = RecordWriter(store, depth=2)
    for i in range(50):
        writer.put({"id": f"r{i:02}", "status": "ok"})
    writer.close()
    store.close()

    assert sorted(r["id"] for r in store.records()) == [f"r{i:02}" for i in range(50)]


def test_a_record_that_cannot_be_saved_stops_the_run_with_a_clear_error(tmp_path):
    store = RunStore.create(tmp_path)
    store.records_dir.rmdir()
    store.records_dir.write_text("not a folder")
    writer = RecordWriter(store)
    writer.put({"id": "a", "status": "ok"})

    with pytest.raises(RunnerError, match=r"cannot save records in .*: "):
        writer.close()
