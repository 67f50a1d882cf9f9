"""Images from local files: rendering, folder cases, checks before sending, small records."""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path

import imagefiles
import pytest
import yaml
from helpers import KEY, KEY_ENV, read_records, run_args, without_codes

from runner.spec.images import gif_frames, inspect_image

ROOT = Path(__file__).parent.parent


def image_spec(
    project: Path, parts: list[dict], name: str = "vision", text: str = "", **fields
) -> Path:
    """specs/NAME.yaml with one user message of a text part and ``parts``."""
    spec = {
        "version": 1,
        "name": name,
        # a model that reads images, of the provider the spec names (checked 2026-12-08)
        "model": "gpt-5-mini" if fields.get("provider") == "openai" else "qwen/qwen3.8-27b",
        **fields,
        "messages": [
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": f"{text or 'What is in the image?'} ({name})"},
                    *parts,
                ],
            }
        ],
    }
    path = project / "specs" / f"{name}.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path


def write(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def image_part(path: str, **extra) -> dict:
    return {"type": "image_url", "image_url": {"path": path, **extra}}


def data_urls(body: dict) -> list[str]:
    return [
        part["image_url"]["url"]
        for message in body["messages"]
        if isinstance(message["content"], list)
        for part in message["content"]
        if part["type"] == "image_url"
    ]


def decode(url: str) -> tuple[str, bytes]:
    head, _, data = url.partition(";base64,")
    return head[len("data:") :], base64.b64decode(data)


def line_of(path: Path, text: str) -> int:
    return next(i for i, line in enumerate(path.read_text().splitlines(), 1) if text in line)


# ---- reading image headers


@pytest.mark.parametrize(
    ("data", "media_type", "size"),
    [
        (imagefiles.png(7, 5), "image/png", (7, 5)),
        (imagefiles.jpeg(640, 480), "image/jpeg", (640, 480)),
        (imagefiles.gif(33, 17), "image/gif", (33, 17)),
        (imagefiles.webp(300, 200, "VP8L"), "image/webp", (300, 200)),
        (imagefiles.webp(301, 199, "VP8 "), "image/webp", (301, 199)),
        (imagefiles.webp(5000, 4000, "VP8X"), "image/webp", (5000, 4000)),
    ],
)
def test_type_and_size_come_from_the_header(tmp_path, data, media_type, size):
    info = inspect_image(write(tmp_path / "picture.bin", data))
    assert (info.media_type, (info.width, info.height), info.size) == (media_type, size, len(data))


def test_animated_gifs_are_told_from_still_ones(tmp_path):
    assert gif_frames(write(tmp_path / "still.gif", imagefiles.gif(4, 4, frames=1))) == 1
    assert gif_frames(write(tmp_path / "moving.gif", imagefiles.gif(4, 4, frames=3))) == 2


# ---- rendering


def test_rendered_data_urls_decode_to_the_files(project, run_cli, openai_request_validator):
    files = {
        "a.png": imagefiles.png(3, 2, shade=200),
        "b.jpg": imagefiles.jpeg(20, 10),
        "c.webp": imagefiles.webp(8, 8),
        "d.gif": imagefiles.gif(2, 2),
    }
    for name, data in files.items():
        write(project / "specs" / "pictures" / name, data)
    parts = [image_part("pictures/{{ first }}", detail="low")]
    parts += [image_part(f"pictures/{name}") for name in list(files)[1:]]
    image_spec(project, parts, vars={"first": "a.png"})

    result = run_cli("render", "specs/vision.yaml")

    assert result.exit_code == 0, result.stderr
    body = json.loads(result.stdout)
    openai_request_validator.validate(body)
    decoded = [decode(url) for url in data_urls(body)]
    assert [d[1] for d in decoded] == list(files.values())
    assert [d[0] for d in decoded] == ["image/png", "image/jpeg", "image/webp", "image/gif"]
    assert body["messages"][0]["content"][1]["image_url"]["detail"] == "low"
    assert set(body["messages"][0]["content"][1]["image_url"]) == {"url", "detail"}


def test_the_type_comes_from_the_bytes_not_the_name(project, run_cli):
    write(project / "specs" / "scan.jpg", imagefiles.png(2, 2))
    image_spec(project, [image_part("scan.jpg")])

    body = json.loads(run_cli("render", "specs/vision.yaml").stdout)

    assert decode(data_urls(body)[0])[0] == "image/png"


def test_the_example_spec_renders_to_valid_requests(run_cli, openai_request_validator):
    result = run_cli("render", str(ROOT / "specs" / "receipt-total.yaml"))

    listed = json.loads(result.stdout)
    assert [item["id"] for item in listed] == [
        "receipt-total/books-0977.png",
        "receipt-total/cafe-0412.png",
        "receipt-total/market-1203.png",
    ]
    for item in listed:
        openai_request_validator.validate(item["body"])
        _, data = decode(data_urls(item["body"])[0])
        name = item["id"].split("/")[1]
        assert data == (ROOT / "specs" / "data" / "receipts" / name).read_bytes()


# ---- cases from files and data columns


def test_folder_cases_have_the_file_names_as_stable_ids(project, run_cli):
    for name in ("b.png", "a.png", "notes.txt", "deeper/c.png"):
        write(project / "specs" / "scans" / name, imagefiles.png(2, 2))
    image_spec(
        project,
        [image_part("{{ path }}")],
        cases={"files": "scans/*.png"},
        matrix={"temperature": [0, 1]},
    )

    first = json.loads(run_cli("render", "specs/vision.yaml").stdout)
    write(project / "specs" / "scans" / "0-new.png", imagefiles.png(3, 3))
    second = json.loads(run_cli("render", "specs/vision.yaml").stdout)

    assert [item["id"] for item in first] == [
        "vision/a.png/temperature=0",
        "vision/a.png/temperature=1",
        "vision/b.png/temperature=0",
        "vision/b.png/temperature=1",
    ]
    assert [item["id"] for item in second][2:] == [item["id"] for item in first]
    assert second[:2] != first[:2]
    assert second[2:] == first


def test_a_recursive_pattern_and_the_case_variables(project, run_cli):
    write(project / "specs" / "scans" / "2024" / "r1.png", imagefiles.png(2, 2))
    write(project / "specs" / "scans" / "2025" / "r2.png", imagefiles.png(3, 3))
    image_spec(
        project,
        [image_part("{{ path }}")],
        text="{{ name }} {{ stem }} {{ path }}",
        cases={"files": "scans/**/*.png"},
    )

    listed = json.loads(run_cli("render", "specs/vision.yaml").stdout)

    texts = [item["body"]["messages"][0]["content"][0]["text"] for item in listed]
    assert texts == [
        "r1.png r1 scans/2024/r1.png (vision)",
        "r2.png r2 scans/2025/r2.png (vision)",
    ]


def test_a_pattern_ending_in_two_stars_gives_the_files_below_on_every_python(project, run_cli):
    write(project / "specs" / "scans" / "r0.png", imagefiles.png(2, 2))
    write(project / "specs" / "scans" / "2025" / "r1.png", imagefiles.png(3, 3))
    image_spec(project, [image_part("{{ path }}")], cases={"files": "scans/**"})

    listed = json.loads(run_cli("render", "specs/vision.yaml").stdout)

    assert [item["id"] for item in listed] == ["vision/r1.png", "vision/r0.png"]


def test_a_data_file_column_names_the_images(project, run_cli):
    write(project / "specs" / "img" / "one.png", imagefiles.png(1, 1, shade=1))
    write(project / "specs" / "img" / "two.png", imagefiles.png(1, 1, shade=2))
    (project / "specs" / "data").mkdir(parents=True)
    (project / "specs" / "data" / "rows.csv").write_text(
        "id,image\nfirst,img/one.png\nsecond,img/two.png\n"
    )
    image_spec(project, [image_part("{{ image }}")], cases="data/rows.csv")

    listed = json.loads(run_cli("render", "specs/vision.yaml").stdout)

    assert [item["id"] for item in listed] == ["vision/first", "vision/second"]
    assert [decode(data_urls(item["body"])[0])[1] for item in listed] == [
        imagefiles.png(1, 1, shade=1),
        imagefiles.png(1, 1, shade=2),
    ]


# ---- checks before sending


def validate(run_cli) -> list[str]:
    result = run_cli("validate", "specs/vision.yaml")
    assert result.exit_code == 1, result.stdout
    return without_codes(result.stdout).splitlines()


def test_validate_reports_a_missing_image_at_its_line_with_the_case(project, run_cli):
    write(project / "specs" / "img" / "here.png", imagefiles.png(2, 2))
    spec = image_spec(
        project,
        [image_part("img/{{ file }}")],
        cases=[{"id": "ok", "file": "here.png"}, {"id": "lost", "file": "gone.png"}],
    )

    lines = validate(run_cli)

    line = line_of(spec, "path: img/")
    assert lines == [
        f"specs/vision.yaml:{line}:13: case 'lost': image file not found: img/gone.png "
        "(looked for specs/img/gone.png, as the path is relative to the spec file)"
    ]


def test_validate_reports_a_file_that_is_not_an_image(project, run_cli):
    (project / "specs" / "img").mkdir(parents=True)
    (project / "specs" / "img" / "fake.png").write_text("just text, not a picture")
    spec = image_spec(project, [image_part("img/fake.png")])

    lines = validate(run_cli)

    assert lines == [
        f"specs/vision.yaml:{line_of(spec, 'path: img/')}:13: img/fake.png is not an "
        "image: it is not a PNG, JPEG, WebP or GIF image (use PNG, JPEG, WebP or GIF files)"
    ]


def test_validate_refuses_an_image_outside_the_project(project, run_cli, tmp_path_factory):
    outside = tmp_path_factory.mktemp("elsewhere") / "secret.png"
    outside.write_bytes(imagefiles.png(2, 2))
    image_spec(project, [image_part(str(outside))])

    lines = validate(run_cli)

    assert len(lines) == 1 and "is outside the project folder" in lines[0]
    assert lines[0].startswith("specs/vision.yaml:")


def test_validate_refuses_a_type_the_provider_does_not_take(project, run_cli):
    write(project / "specs" / "moving.gif", imagefiles.gif(8, 8, frames=3))
    write(project / "specs" / "still.gif", imagefiles.gif(8, 8, frames=1))
    spec = image_spec(
        project, [image_part("moving.gif"), image_part("still.gif")], provider="openai"
    )

    lines = validate(run_cli)

    assert lines == [
        f"specs/vision.yaml:{line_of(spec, 'path: moving.gif')}:13: moving.gif is an "
        "animated GIF; openai takes only still GIFs"
    ]


def test_validate_refuses_a_request_above_the_providers_size_limit(project, run_cli):
    # 3,000,000 bytes of image are 4,000,000 characters of base64: over Groq's 4 MB with the
    # rest of the request; 2,900,000 bytes are well under it.
    write(project / "specs" / "big.png", imagefiles.png(2, 2, pad_to=3_000_000))
    write(project / "specs" / "fine.png", imagefiles.png(2, 2, pad_to=2_900_000))
    spec = image_spec(
        project,
        [image_part("{{ file }}")],
        cases=[{"id": "big", "file": "big.png"}, {"id": "fine", "file": "fine.png"}],
    )

    lines = validate(run_cli)

    assert len(lines) == 1
    prefix = f"specs/vision.yaml:{line_of(spec, 'path:')}:13: case 'big': the request with its "
    assert lines[0].startswith(prefix + "base64 images is 4,000,")
    assert "bytes; groq takes at most 4,000,000" in lines[0]


def test_the_size_check_counts_the_request_as_sent(project, run_cli, monkeypatch):
    from runner.check.validate import load_spec
    from runner.errors import SpecError
    from runner.spec.images import IMAGE_LIMITS, ImageLimits

    write(project / "specs" / "pic.png", imagefiles.png(2, 2, pad_to=2_000_000))
    spec = image_spec(project, [image_part("pic.png")])
    body = json.loads(run_cli("render", "specs/vision.yaml").stdout)
    sent = len(json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode())

    monkeypatch.setitem(IMAGE_LIMITS, "groq", ImageLimits("groq", max_request_bytes=sent))
    assert load_spec(spec).name == "vision"
    monkeypatch.setitem(IMAGE_LIMITS, "groq", ImageLimits("groq", max_request_bytes=sent - 1))
    with pytest.raises(SpecError, match=f"is {sent:,} bytes; groq takes at most {sent - 1:,}"):
        load_spec(spec)


def test_validate_refuses_too_many_pixels_and_too_many_images(project, run_cli):
    write(project / "specs" / "huge.png", imagefiles.png(8000, 5000)[:33])  # header only
    write(project / "specs" / "small.png", imagefiles.png(2, 2))
    parts = [image_part("huge.png")] + [image_part("small.png")] * 5
    spec = image_spec(project, parts)

    lines = validate(run_cli)

    first = line_of(spec, "path: huge.png")
    assert lines == [
        f"specs/vision.yaml:{first}:13: huge.png is 8000x5000 (40,000,000 pixels); groq "
        "takes at most 33,177,600 pixels per image (scale the image down)",
        f"specs/vision.yaml:{first}:13: the request has 6 images; groq takes at most 5 per "
        "request (send fewer images per request, e.g. one case per image)",
    ]


def test_validate_reports_folder_patterns_that_match_nothing_or_leave(project, run_cli):
    spec = image_spec(project, [image_part("{{ path }}")], cases={"files": "scans/*.png"})
    assert validate(run_cli) == [
        f"specs/vision.yaml:{line_of(spec, 'files:')}:10: no file matches 'scans/*.png' "
        "(looked for specs/scans/*.png, as the pattern is relative to the folder of the spec "
        "file)"
    ]
    image_spec(project, [image_part("{{ path }}")], cases={"files": "../*.png"})
    assert "may not leave the spec's folder" in validate(run_cli)[0]


def test_a_part_with_both_url_and_path_is_refused(project, run_cli):
    write(project / "specs" / "a.png", imagefiles.png(2, 2))
    image_spec(
        project, [{"type": "image_url", "image_url": {"url": "https://x/a.png", "path": "a.png"}}]
    )

    lines = validate(run_cli)

    assert len(lines) == 1 and "either 'url'" in lines[0]
    spec = image_spec(project, [{"type": "image_url", "image_url": {"detail": "low"}}])
    assert validate(run_cli) == [
        f"specs/vision.yaml:{line_of(spec, 'image_url:')}:5: 'messages[0].content[1].image_url' "
        "needs either 'url' (an https or data: URL) or 'path' (a local image file), not both"
    ]


def test_validate_checks_bytes_per_image_and_per_request(project, run_cli, monkeypatch):
    from runner.spec.images import IMAGE_LIMITS, ImageLimits

    limits = ImageLimits("openai", max_image_bytes=1000, max_total_image_bytes=1500)
    monkeypatch.setitem(IMAGE_LIMITS, "openai", limits)
    write(project / "specs" / "big.png", imagefiles.png(2, 2, pad_to=1200))
    write(project / "specs" / "small.png", imagefiles.png(2, 2, pad_to=600))
    spec = image_spec(project, [image_part("big.png"), image_part("small.png")], provider="openai")

    lines = validate(run_cli)

    at = f"specs/vision.yaml:{line_of(spec, 'path: big.png')}:13:"
    assert lines == [
        f"{at} big.png is 1,200 bytes; openai takes at most 1,000 per image "
        "(make the image smaller)",
        f"{at} the request's images add up to 1,800 bytes; openai takes at most 1,500 "
        "(send fewer or smaller images per request)",
    ]


# ---- records, cache and replay


@pytest.fixture
def run_server(run_cli, openai_server, project, monkeypatch):
    monkeypatch.setenv(KEY_ENV, KEY)
    monkeypatch.delenv("RUNNER_CACHE_DIR", raising=False)

    def run(*extra: str, expect: int = 0):
        result = run_cli(*run_args(openai_server.base_url), "--json", *extra)
        assert result.exit_code == expect, result.stderr
        return json.loads(result.stdout)

    return run


def folder_project(project: Path, count: int = 3) -> list[Path]:
    files = [
        write(project / "specs" / "scans" / f"r{i}.png", imagefiles.png(4, 4, shade=i))
        for i in range(count)
    ]
    image_spec(project, [image_part("{{ path }}")], cases={"files": "scans/*.png"})
    return files


def test_records_hold_a_reference_not_the_base64(project, openai_server, run_server):
    openai_server.record = True
    files = folder_project(project, 2)

    summary = run_server()

    assert summary["ok"] == 2
    run_dir = Path(summary["run_dir"])
    saved = [path for path in run_dir.rglob("*") if path.is_file()]
    assert saved and all(b"base64" not in path.read_bytes() for path in saved)
    records = {r["id"]: r for r in read_records(run_dir).values()}
    part = records["vision/r1.png"]["request"]["messages"][0]["content"][1]
    assert part == {
        "type": "image_url",
        "image_url": {
            "path": "specs/scans/r1.png",
            "bytes": len(files[1].read_bytes()),
            "sha256": hashlib.sha256(files[1].read_bytes()).hexdigest(),
            "media_type": "image/png",
        },
    }
    sent = sorted(decode(data_urls(r.body)[0])[1] for r in openai_server.received)
    assert sent == sorted(f.read_bytes() for f in files)


def test_editing_one_image_resends_only_its_request(project, openai_server, run_server):
    files = folder_project(project, 3)

    first = run_server()
    second = run_server()
    files[1].write_bytes(imagefiles.png(5, 5, shade=99))
    third = run_server()

    assert (first["cached"], second["cached"], third["cached"]) == (0, 3, 2)
    assert openai_server.count == 4
    records = {r["id"]: r for r in read_records(Path(third["run_dir"])).values()}
    assert [rid for rid, r in sorted(records.items()) if not r["cached"]] == ["vision/r1.png"]


def test_a_cassette_keeps_references_and_replays(project, openai_server, run_server, run_cli):
    files = folder_project(project, 2)
    recorded = run_server("--no-cache")
    cassette = project / "vision.jsonl"

    exported = run_cli("export", recorded["run_dir"], "-o", cassette)
    replayed = run_cli(
        *run_args(openai_server.base_url), "--replay", cassette, "--api-key-env", "NO_SUCH_KEY"
    )

    assert exported.exit_code == 0, exported.stderr
    assert "base64" not in cassette.read_text()
    assert replayed.exit_code == 0, replayed.stderr
    assert openai_server.count == 2
    files[0].write_bytes(imagefiles.png(6, 6))
    changed = run_cli(*run_args(openai_server.base_url), "--replay", cassette)
    assert changed.exit_code == 2
    assert "no answer for 1 request" in changed.stderr and "vision/r0.png" in changed.stderr


def test_the_offline_provider_answers_the_example(run_cli, tmp_path):
    result = run_cli(
        "run",
        ROOT / "specs" / "receipt-total.yaml",
        "--provider",
        "offline",
        "--out",
        tmp_path,
        "--json",
    )

    assert result.exit_code == 0, result.stderr
    records = read_records(next(tmp_path.iterdir()))
    assert len(records) == 3
    for record in records.values():
        assert record["status"] == "ok" and record["output"]["valid"]
        assert {"shop", "items", "total", "currency"} <= set(record["output"]["parsed"])


def test_the_test_server_refuses_a_broken_data_url(project, openai_server, run_server):
    spec = image_spec(
        project,
        [{"type": "image_url", "image_url": {"url": "data:image/png;base64,bm90IGEgcG5n"}}],
    )
    assert spec.is_file()

    summary = run_server(expect=1)

    assert summary["failed"] == 1
    assert "not the image/png" in json.dumps(summary["failures"])


def test_two_files_of_one_name_are_reported(project, run_cli):
    write(project / "specs" / "scans" / "a" / "same.png", imagefiles.png(2, 2))
    write(project / "specs" / "scans" / "b" / "same.png", imagefiles.png(3, 3))
    spec = image_spec(project, [image_part("{{ path }}")], cases={"files": "scans/**/*.png"})

    assert validate(run_cli) == [
        f"specs/vision.yaml:{line_of(spec, 'files:')}:10: file 2 has the same name as file 1 "
        "(case id 'same.png') (a file's name is its case id: rename one, or match one folder "
        "only)"
    ]


@pytest.mark.parametrize(
    ("pattern", "words"),
    [
        ("***/x.png", "is not a pattern this runner reads"),
        ("scans/a**.png", "is not a pattern this runner reads"),
        (".", "is not a pattern this runner reads"),
        ("/abs/*.png", "may not leave"),
    ],
)
def test_unusable_patterns_and_paths_are_reported_not_raised(project, run_cli, pattern, words):
    image_spec(project, [image_part("{{ path }}")], cases={"files": pattern})
    assert words in validate(run_cli)[0]
    image_spec(project, [image_part("a\x00b.png")])
    assert "is not a usable path" in validate(run_cli)[0]


def test_scoring_a_run_again_compares_image_references(project, run_cli, tmp_path):
    files = folder_project(project, 2)
    ran = run_cli("run", "specs", "--provider", "offline", "--out", tmp_path, "--json")
    run_dir = json.loads(ran.stdout)["run_dir"]

    same = run_cli("score", run_dir, "--json")
    files[0].write_bytes(imagefiles.png(7, 7))
    changed = run_cli("score", run_dir, "--json")

    assert json.loads(same.stdout)["prompt_changed"] == []
    assert json.loads(changed.stdout)["prompt_changed"] == ["vision/r0.png"]


def test_resume_refuses_a_changed_folder_of_images(project, run_cli):
    files = folder_project(project, 2)
    assert run_cli("run", "specs", "--provider", "offline", "--out", "runs", "-q").exit_code == 0
    run_dir = next((project / "runs").iterdir())
    assert run_cli("run", "--resume", run_dir, "-q").exit_code == 0

    files[1].write_bytes(imagefiles.png(9, 9))
    result = run_cli("run", "--resume", run_dir)

    assert result.exit_code == 2 and "has changed since the run started" in result.output


def test_validate_reports_an_image_path_that_fails_for_a_case(project, run_cli):
    write(project / "specs" / "5.png", imagefiles.png(2, 2))
    image_spec(
        project,
        [image_part("{{ 10 // n }}.png")],
        cases=[{"id": "ok", "n": 2}, {"id": "zero", "n": 0}],
    )

    lines = validate(run_cli)

    assert len(lines) == 1
    assert "case 2 ('zero') makes the template" in lines[0] and "ZeroDivisionError" in lines[0]


def test_an_image_over_the_cap_is_refused_before_it_is_read(project, run_cli):
    """Issue 22.8: a 200 MB file with a PNG header, for a provider without a size limit
    (offline, custom), was read whole (861 MB at peak). One cap for every provider, checked
    before reading: runner validate names it at its line, and a run refuses the case."""
    big = project / "specs" / "img" / "huge.png"
    write(big, imagefiles.png(2, 2))
    with open(big, "r+b") as handle:
        handle.truncate(200_000_000)  # sparse: no disk used, but 200 MB to read
    spec = image_spec(
        project,
        [image_part("img/huge.png")],
        provider={"name": "local", "base_url": "http://127.0.0.1:9/v1"},
    )
    line = line_of(spec, "path: img/")
    checked = run_cli("validate", spec)
    assert checked.exit_code == 1
    assert (
        f"specs/vision.yaml:{line}:13: img/huge.png is 200,000,000 bytes; runner reads images "
        "of at most 20,000,000 bytes (make the image smaller)"
    ) in checked.stdout
    # At render time too (the file may grow after validate), before reading it.
    import tracemalloc

    from runner.errors import RenderError
    from runner.spec.images import render_image_part
    from runner.spec.objects import ImagePart, TextTemplate

    part = ImagePart(TextTemplate("img/huge.png", "specs/vision.yaml", line, 13), spec.parent)
    tracemalloc.start()
    with pytest.raises(RenderError, match="runner reads images of at most 20,000,000 bytes"):
        render_image_part(part, "img/huge.png")
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert peak < 1_000_000, peak
