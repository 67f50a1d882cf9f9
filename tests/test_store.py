"""The run directory: atomic writes, safe names, results.jsonl rebuilt without duplicates."""

import json

from runner.store import RunStore, safe_file_name, write_json_atomic


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


def test_results_rewritten_sorted_without_duplicates(tmp_path):
    store = RunStore.create(tmp_path)
    store.save_record({"id": "b", "status": "failed"})
    store.save_record({"id": "a", "status": "ok"})
    store.save_record({"id": "b", "status": "ok"})
    lines = (store.root / "results.jsonl").read_text().splitlines()
    assert len(lines) == 3
    store.rewrite_results()
    records = [json.loads(line) for line in (store.root / "results.jsonl").read_text().splitlines()]
    assert records == [{"id": "a", "status": "ok"}, {"id": "b", "status": "ok"}]


def test_completed_ids_skip_failures(tmp_path):
    store = RunStore.create(tmp_path)
    store.save_record({"id": "done", "status": "ok"})
    store.save_record({"id": "bad-json", "status": "invalid_output"})
    store.save_record({"id": "retry-me", "status": "failed"})
    (store.records_dir / "half.json").write_text('{"id": "half", "sta')
    assert store.completed_ids() == {"done", "bad-json"}
