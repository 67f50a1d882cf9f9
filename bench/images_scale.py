"""Images at scale: one spec over 100 and 1,000 image files (one case each), offline provider.

Each image is a generated greyscale PNG of random pixels (so it does not compress away; about
37 KB at 192x192), named by ``cases: {files: images/*.png}`` and sent as a base64 data URL.
For each count the whole `runner run` process (validate every image's header, render, answer
offline, save one record per case) is a child; the table gives its wall, CPU and peak memory
(``ru_maxrss`` from ``os.wait4``), the run directory's size on disk, and the size of the images
themselves and of their base64 text, to show that neither memory nor the run directory holds
the images: both stay flat per image while the images' own bytes grow tenfold.

    python bench/images_scale.py                 # 100 and 1,000 images, about a minute
    python bench/images_scale.py --images 100 1000 --size 256
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

import imagefiles  # noqa: E402
from cases_scale import WORK, offline_run  # noqa: E402

SPEC = """\
version: 1
name: images
model: qwen/qwen3.8-27b
temperature: 0
max_completion_tokens: 64
cases:
  files: images/*.png
response_format:
  type: json_schema
  json_schema:
    name: picture
    schema:
      type: object
      additionalProperties: false
      required: [label, confidence]
      properties:
        label: {type: string}
        confidence: {type: number}
messages:
  - role: user
    content:
      - type: text
        text: "Label picture {{ stem }}."
      - type: image_url
        image_url:
          path: "{{ path }}"
"""

# The control: the same cases and text, without the image part.
TEXT_ONLY = SPEC[: SPEC.index("      - type: image_url")]


@dataclass
class Measurement:
    images: int
    image_bytes: int
    base64_bytes: int
    wall: float
    cpu: float
    peak_mb: float
    run_dir_bytes: int
    records: int


def noise_png(size: int, rng: random.Random) -> bytes:
    """A greyscale PNG of random pixels: real, decodable, and about size*size bytes."""
    return imagefiles.png(size, size, pixels=rng.randbytes(size * size))


def write_project(folder: Path, images: int, size: int, spec: str) -> tuple[Path, int]:
    (folder / "pyproject.toml").write_text("")
    specs = folder / "specs"
    (specs / "images").mkdir(parents=True)
    (specs / "images.yaml").write_text(spec)
    rng = random.Random(17)
    total = 0
    for i in range(images):
        data = noise_png(size, rng)
        (specs / "images" / f"img-{i:05}.png").write_bytes(data)
        total += len(data)
    return specs / "images.yaml", total


def disk_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def measure(images: int, size: int, concurrency: int, spec_text: str = SPEC) -> Measurement:
    WORK.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory(dir=WORK) as temp:
        folder = Path(temp)
        spec, image_bytes = write_project(folder, images, size, spec_text)
        base64_bytes = 4 * ((image_bytes + 2) // 3)
        usage = offline_run(spec, folder, concurrency)
        run_dir = next((folder / "runs").iterdir())
        records = sum(1 for line in (run_dir / "results.jsonl").open() if line.strip())
        if b"base64" in (run_dir / "results.jsonl").read_bytes():
            raise SystemExit("a record holds base64 text")
        return Measurement(
            images,
            image_bytes,
            base64_bytes,
            usage.wall,
            usage.cpu,
            usage.maxrss_mb,
            disk_bytes(run_dir),
            records,
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, nargs="+", default=[100, 1000])
    parser.add_argument("--size", type=int, default=192, help="width and height in pixels")
    parser.add_argument("--concurrency", type=int, default=8)
    args = parser.parse_args()
    print(
        "| images | request | images on disk MB | their base64 MB | records | wall s | CPU s "
        "| peak RSS MB | peak / its 1st count | run dir MB | run dir KB per case |"
    )
    print("|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    first: dict[str, float] = {}
    for count in args.images:
        for label, spec in (("text only (control)", TEXT_ONLY), ("text + image", SPEC)):
            m = measure(count, args.size, args.concurrency, spec)
            base = first.setdefault(label, m.peak_mb)
            print(
                f"| {m.images:,} | {label} | {m.image_bytes / 1e6:.1f} "
                f"| {m.base64_bytes / 1e6:.1f} | {m.records:,} | {m.wall:.1f} | {m.cpu:.1f} "
                f"| {m.peak_mb:.0f} | {m.peak_mb / base:.2f} | {m.run_dir_bytes / 1e6:.2f} "
                f"| {m.run_dir_bytes / 1e3 / m.images:.2f} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
