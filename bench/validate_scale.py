"""`runner validate` on 1,000 spec files, against the floor of what any validator must do.

Measured in one run, median wall time of several child processes each:
- `python -c pass` (interpreter start-up);
- `runner validate` on one spec (start-up plus imports);
- `runner validate` on 1,000 specs (the target: under 1.5 s);
- the floor: one Python process that reads the same 1,000 files with `yaml.safe_load` (the C
  loader when present) and checks each against the spec JSON Schema with a prebuilt
  `Draft202012Validator`, nothing else (no templates, no positions, no rendering).
Reported as wall seconds and as ratios to the floor.

    python bench/validate_scale.py              # 1,000 specs, 5 runs each
    python bench/validate_scale.py --specs 2000 --runs 3
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from measure import median, run_child
from workload import write_specs

WORK = Path(__file__).resolve().parent / ".work"
ROOT = Path(__file__).resolve().parent.parent
FLOOR = """\
import json, sys
from pathlib import Path
import yaml
from jsonschema import Draft202012Validator
loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
validator = Draft202012Validator(json.loads(Path(sys.argv[1]).read_text()))
bad = 0
for path in sorted(Path(sys.argv[2]).glob("*.yaml")):
    bad += any(True for _ in validator.iter_errors(yaml.load(path.read_text(), Loader=loader)))
print(bad)
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--specs", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    runner = str(Path(sys.executable).parent / "runner")
    folder = WORK / f"validate-{args.specs}"
    shutil.rmtree(folder, ignore_errors=True)
    write_specs(folder, args.specs)
    (folder / "pyproject.toml").write_text("")
    one = WORK / "validate-1"
    shutil.rmtree(one, ignore_errors=True)
    write_specs(one, 1)
    floor = WORK / "validate_floor.py"
    floor.write_text(FLOOR)
    commands = {
        "python -c pass": [sys.executable, "-c", "pass"],
        "runner validate (1 spec)": [runner, "validate", str(one), "--quiet"],
        f"runner validate ({args.specs} specs)": [runner, "validate", str(folder), "--quiet"],
        f"floor: safe_load + jsonschema ({args.specs} specs)": [
            sys.executable,
            str(floor),
            str(ROOT / "runner" / "spec.schema.json"),
            str(folder),
        ],
    }
    walls: dict[str, list[float]] = {name: [] for name in commands}
    for _ in range(args.runs):  # alternate, so a busy moment hits every command alike
        for name, argv in commands.items():
            usage = run_child(argv)
            if usage.returncode != 0:
                raise SystemExit(f"{name} failed: {usage.stderr[-500:]}")
            walls[name].append(usage.wall)
    floor_wall = median(walls[list(commands)[-1]])
    print(f"| command | wall s (median of {args.runs}) | x floor |")
    print("|---|---|---|")
    for name, runs in walls.items():
        print(f"| {name} | {median(runs):.3f} | {median(runs) / floor_wall:.2f} |")


if __name__ == "__main__":
    main()
