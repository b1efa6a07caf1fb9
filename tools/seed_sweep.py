"""Re-run a chapter over several seeds and record the spread of the numbers its asserts check.

    python tools/seed_sweep.py chapters/cd_pathologies.ipynb              # seeds 0-4, two at a time
    python tools/seed_sweep.py chapters/digits.ipynb --seeds 0 1 2 3 4 5 --jobs 1
    python tools/seed_sweep.py chapters/digits.ipynb --cite "AUROC blurred"   # the comment to paste

A number downstream of training changes with the seed (and with the CPU: one
last-bit difference grows into another result), so an assert on it needs a margin
taken from its spread. For each chapter, ``chapters/seed_sweeps/<chapter>.json``
holds the quantities to record, as Python expressions evaluated in the notebook's
namespace after its last cell::

    {"quantities": {"cold gap": "rows['cold, from noise']['gap']", ...}}

This script executes the notebook once per seed, in the reference environment,
with the line ``SEED = <n>`` of its settings cell replaced (every random draw of a
swept chapter must derive from SEED), evaluates each expression, and writes back
into the same file, per quantity, its value for every seed and their mean,
standard deviation, minimum and maximum. The notebooks' comments cite these
numbers when they set an assert's threshold (inside the spread of the claim,
outside the spread of the alternative it rules out), in the form printed by
``--cite``; tests/test_validation.py checks that every quoted number is the file's.

A cell that raises (an assert whose threshold a seed misses) does not stop the
run: the failures are printed and recorded with the seed. Nothing is written to
the notebook itself. The file also records the machine, the
date and a hash of the notebook's code, so a stale sweep can be recognized.
"""

from __future__ import annotations

import argparse
import copy
import datetime
import hashlib
import json
import platform
import re
import statistics
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import nbformat  # noqa: E402

from tools import execute, reference_env  # noqa: E402

SWEEP_DIR = ROOT / "chapters" / "seed_sweeps"
SEED_LINE = re.compile(r"^SEED = \d+", flags=re.MULTILINE)
RESULT_MARK = "SEED-SWEEP-RESULT "


def sweep_file(notebook: Path) -> Path:
    return SWEEP_DIR / f"{notebook.stem}.json"


def code_hash(nb) -> str:
    """A hash of the notebook's code cells (not its outputs)."""
    text = "\n# ---\n".join(cell.source for cell in execute.code_cells(nb))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def with_seed(nb, seed: int, quantities: dict[str, str]):
    """A copy of nb that uses SEED = seed and prints the quantities as JSON at the end."""
    nb = copy.deepcopy(nb)
    settings = [c for c in execute.code_cells(nb) if SEED_LINE.search(c.source)]
    if len(settings) != 1:
        raise ValueError("the notebook needs exactly one code cell with a line 'SEED = <integer>' "
                         "(its settings cell), from which every random draw derives")
    settings[0].source = SEED_LINE.sub(f"SEED = {seed}", settings[0].source)
    probe = ("import json as _json\n"
             "def _value(expression):\n"
             "    try:\n"
             "        return float(eval(expression))\n"
             "    except Exception:   # a run that never computed it (it raised earlier)\n"
             "        return None\n"
             f"_q = {quantities!r}\n"
             f"print({RESULT_MARK!r} + _json.dumps({{k: _value(v) for k, v in _q.items()}}))")
    nb.cells.append(nbformat.v4.new_code_cell(probe))
    return nb


def run_one(path: str, seed: int, quantities: dict[str, str]) -> tuple[int, dict[str, float], float, list[str]]:
    """Execute the notebook at path with one seed; returns (seed, values, seconds, failed cells)."""
    reference_env.apply()
    nb = with_seed(nbformat.read(path, as_version=4), seed, quantities)
    start = time.perf_counter()
    # Failed asserts must not stop the run: the sweep is how their thresholds are set
    execute.run(nb, cwd=Path(path).parent, allow_errors=True)
    elapsed = time.perf_counter() - start
    failed = [f"code cell {i}: {o.ename}: {o.evalue}".strip() for i, cell in enumerate(execute.code_cells(nb))
              for o in cell.outputs if o.output_type == "error"]
    text = "".join(o.get("text", "") for o in nb.cells[-1].outputs if o.output_type == "stream")
    lines = [l for l in text.splitlines() if l.startswith(RESULT_MARK)]
    if not lines:
        raise RuntimeError(f"seed {seed}: the quantities could not be evaluated:\n" + "\n".join(failed))
    return seed, json.loads(lines[0][len(RESULT_MARK):]), elapsed, failed


def summarize(values: dict[int, float | None]) -> dict:
    """Mean, standard deviation, min and max over the seeds that computed the value."""
    v = [x for x in values.values() if x is not None]
    if not v:
        return {"values": {str(k): x for k, x in values.items()}}
    return {"mean": statistics.fmean(v), "std": statistics.stdev(v) if len(v) > 1 else 0.0,
            "min": min(v), "max": max(v), "values": {str(k): x for k, x in values.items()}}


def citation(name: str, s: dict) -> str:
    """The comment that quotes a quantity's sweep (tests/test_validation.py checks the numbers)."""
    # two lines, so that a long name still fits a code cell on the website
    return (f'# sweep "{name}":\n'
            f'#   {s["mean"]:.3f} ± {s["std"]:.3f}, range [{s["min"]:.3f}, {s["max"]:.3f}]')


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("notebook", type=Path)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4],
                        help="seeds to run (at least 5 for the margins of the tests)")
    parser.add_argument("--jobs", type=int, default=2, help="notebooks executed at a time (one core each)")
    parser.add_argument("--cite", nargs="*", metavar="QUANTITY",
                        help="run nothing: print the comment lines that cite these quantities (all without names)")
    args = parser.parse_args(argv)

    path = args.notebook.resolve()
    target = sweep_file(path)
    if args.cite is not None:
        summary = json.loads(target.read_text(encoding="utf-8"))["summary"]
        for name in args.cite or summary:
            print(citation(name, summary[name]))
        return 0
    if not target.exists():
        print(f"{target} is missing: create it with {{\"quantities\": {{name: expression}}}}")
        return 1
    record = json.loads(target.read_text(encoding="utf-8"))
    quantities = record["quantities"]
    nb = nbformat.read(path, as_version=4)
    env = reference_env.apply()
    print(f"{path.name}: {len(quantities)} quantities, seeds {args.seeds}, {args.jobs} at a time")

    results: dict[str, dict[int, float]] = {name: {} for name in quantities}
    seconds, failures = {}, {}
    with ProcessPoolExecutor(max_workers=args.jobs) as pool:
        futures = [pool.submit(run_one, str(path), seed, quantities) for seed in args.seeds]
        for future in futures:
            seed, values, elapsed, failed = future.result()
            seconds[seed] = elapsed
            failures[str(seed)] = failed
            print(f"  seed {seed}: {elapsed:.0f} s" + "".join(f"\n    FAILED {f}" for f in failed), flush=True)
            for name, value in values.items():
                results[name][seed] = value

    record["summary"] = {name: summarize(dict(sorted(v.items()))) for name, v in results.items()}
    record["seeds"] = sorted(args.seeds)
    record["seconds_per_seed"] = {str(k): round(v, 1) for k, v in sorted(seconds.items())}   # wall, machine-dependent
    record["failed_cells"] = failures          # asserts that failed for a seed: the claim or its margin is wrong
    record["notebook_code_sha256"] = code_hash(nb)
    record["machine"] = {"cpu": _cpu_name(), "python": platform.python_version(),
                         "torch": _torch_version(), "env": env}
    record["date"] = datetime.date.today().isoformat()
    target.write_text(json.dumps(record, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    width = max(map(len, quantities))
    print(f"{'quantity':<{width}}      mean       std       min       max")
    for name, s in record["summary"].items():
        if "mean" not in s:
            print(f"{name:<{width}}  not computed by any seed")
            continue
        print(f"{name:<{width}}  {s['mean']:8.4g}  {s['std']:8.2g}  {s['min']:8.4g}  {s['max']:8.4g}")
    print(f"wrote {target.relative_to(ROOT)}")
    return 0


def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _torch_version() -> str:
    import importlib.metadata

    return importlib.metadata.version("torch")


if __name__ == "__main__":
    sys.exit(main())
