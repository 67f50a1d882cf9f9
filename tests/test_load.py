"""YAML loading: positions, syntax errors, and input that must be refused safely."""

from pathlib import Path

import pytest

from runner.errors import SpecError
from runner.spec.load import MAX_FILE_BYTES, load_yaml


def load_error(path: Path) -> str:
    with pytest.raises(SpecError) as caught:
        load_yaml(path, path.name)
    assert len(caught.value.problems) == 1
    return str(caught.value.problems[0])


def write(tmp_path: Path, text: str, name: str = "spec.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_positions_of_values_and_keys(tmp_path):
    doc = load_yaml(write(tmp_path, "a: 1\nlist:\n  - x: |\n      hello\n"))
    assert doc.data == {"a": 1, "list": [{"x": "hello\n"}]}
    assert doc.position(("a",)).line == 1
    assert doc.position(("a",)).column == 4
    assert doc.position(("list", 0, "x"), key=True).line == 3
    assert doc.position(("list", 0, "x"), key=True).column == 5
    assert doc.position(("list", 0, "x")).block


def test_position_of_missing_path_falls_back_to_parent(tmp_path):
    doc = load_yaml(write(tmp_path, "outer:\n  inner: 1\n"))
    assert doc.position(("outer", "nope")).line == 2


def test_dates_stay_text(tmp_path):
    assert load_yaml(write(tmp_path, "d: 2026-01-01\n")).data == {"d": "2026-01-01"}


def test_syntax_error_has_line_and_column(tmp_path):
    message = load_error(write(tmp_path, "a: 1\nb: [1, 2\nc: 3\n"))
    assert message.startswith("spec.yaml:3:2: YAML syntax error:")


def test_tab_indentation_hint(tmp_path):
    message = load_error(write(tmp_path, "a: 1\n\tb: 2\n"))
    assert message.startswith("spec.yaml:2:1: YAML syntax error: a tab is used for indentation")
    assert "use spaces" in message


def test_colon_in_value_hint(tmp_path):
    message = load_error(write(tmp_path, "content: Answer: yes or no: maybe\n"))
    assert message.startswith("spec.yaml:1:16: YAML syntax error: mapping values are not allowed")
    assert "quotes" in message


def test_duplicate_key(tmp_path):
    message = load_error(write(tmp_path, "model: a\ntemperature: 1\nmodel: b\n"))
    assert message == (
        "spec.yaml:3:1: key 'model' appears twice in the same mapping (delete one of them)"
    )


def test_python_tags_are_refused(tmp_path):
    message = load_error(write(tmp_path, "a: !!python/object/apply:os.system ['echo hi']\n"))
    assert message.startswith("spec.yaml:1:4: this document uses the tag")


@pytest.mark.no_render_audit  # the bomb is the point; loading it again costs seconds
def test_alias_bomb_is_refused_quickly(tmp_path):
    lines = ['a: &a ["x", "x", "x", "x", "x", "x", "x", "x", "x"]']
    for prev, name in zip("abcdefgh", "bcdefghi", strict=True):
        lines.append(f"{name}: &{name} [" + ", ".join([f"*{prev}"] * 9) + "]")
    message = load_error(write(tmp_path, "\n".join(lines) + "\n"))
    assert "expands to more than" in message


def test_deep_nesting_is_refused(tmp_path):
    message = load_error(write(tmp_path, "a: " + "[" * 100 + "]" * 100 + "\n"))
    assert "nested more than" in message


def test_binary_file_is_refused(tmp_path):
    path = tmp_path / "spec.yaml"
    path.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00")
    assert load_error(path) == "spec.yaml: is a binary file, not YAML text"


def test_huge_file_is_refused_without_reading(tmp_path):
    path = tmp_path / "spec.yaml"
    with open(path, "wb") as handle:
        handle.truncate(MAX_FILE_BYTES + 1)
    assert "file is too large" in load_error(path)


def test_not_utf8(tmp_path):
    path = tmp_path / "spec.yaml"
    path.write_bytes(b"a: 1\nb: caf\xe9\n")
    assert load_error(path) == (
        "spec.yaml:2: is not valid UTF-8 text (save the file with UTF-8 encoding)"
    )


def test_several_documents(tmp_path):
    message = load_error(write(tmp_path, "a: 1\n---\nb: 2\n"))
    assert "more than one YAML document" in message


def test_merge_keys_work(tmp_path):
    doc = load_yaml(write(tmp_path, "base: &b {x: 1}\nother:\n  <<: *b\n  y: 2\n"))
    assert doc.data["other"] == {"x": 1, "y": 2}
