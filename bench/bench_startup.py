"""Start-up time of the `sttcli` command, against the floor of importing Click.

What is measured: wall time of `sttcli --version` and `sttcli recognize --help`,
each a fresh process, against `python -c "import click"` with the same
interpreter: the CLI cannot start faster than Python plus Click, so the ratio
is the price of sttcli's own start-up. Runs are interleaved (one of each per
round, after warm-up rounds), so drift in the machine's load hits all alike;
the median is reported.

Why: `--version` and `--help` must not pay for gRPC, protobuf, Rich or the
offline engine. The script also checks that directly: it runs the CLI's
version path in-process and lists which of those modules ended up imported.

    python bench/bench_startup.py [--runs 30] [--warmup 3]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

PYTHON = sys.executable
STTCLI = str(Path(sys.executable).parent / "sttcli")
TARGET_RATIO = 1.5
# Modules `sttcli --version` must not import (a package counts with its submodules).
HEAVY = ("grpc", "google.protobuf", "rich", "pocketsphinx", "importlib.metadata", "av", "numpy")

COMMANDS: dict[str, list[str]] = {
    'python -c "import click"': [PYTHON, "-c", "import click"],
    "sttcli --version": [STTCLI, "--version"],
    "sttcli recognize --help": [STTCLI, "recognize", "--help"],
}

# Runs the CLI as the `sttcli` script does, then reports what got imported.
_IMPORT_CHECK = """
import contextlib, io, json, sys
from sttcli.cli import main
sys.argv = ["sttcli", "--version"]
out = io.StringIO()
with contextlib.redirect_stdout(out):
    try:
        main()
    except SystemExit:
        pass
heavy = {heavy!r}
loaded = {{
    name: sorted(m for m in sys.modules if m == name or m.startswith(name + "."))
    for name in heavy
}}
print(json.dumps({{"printed": out.getvalue().strip(), "loaded": loaded}}))
"""


def time_once(command: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def time_commands(runs: int, warmup: int) -> dict[str, list[float]]:
    """Wall times per command, interleaved round by round."""
    times: dict[str, list[float]] = {name: [] for name in COMMANDS}
    for round_number in range(warmup + runs):
        for name, command in COMMANDS.items():
            elapsed = time_once(command)
            if round_number >= warmup:
                times[name].append(elapsed)
    return times


def heavy_imports() -> tuple[str, dict[str, list[str]]]:
    """What `sttcli --version` printed, and the heavy modules it imported (empty: none)."""
    code = _IMPORT_CHECK.format(heavy=HEAVY)
    result = subprocess.run([PYTHON, "-c", code], check=True, capture_output=True, text=True)
    report = json.loads(result.stdout.strip().splitlines()[-1])
    return report["printed"], report["loaded"]


def slowest_imports(limit: int = 6) -> list[tuple[int, str]]:
    """The largest imports of `python -m sttcli --version`: (cumulative µs, name).

    From -X importtime: top-level imports, and the ones they make directly
    (named "parent > child"), so Click shows up inside sttcli.cli.
    """
    result = subprocess.run(
        [PYTHON, "-X", "importtime", "-m", "sttcli", "--version"],
        check=True,
        capture_output=True,
        text=True,
    )
    rows: list[tuple[int, str]] = []
    children: list[tuple[int, str]] = []  # importtime lists a module after its imports
    for line in result.stderr.splitlines():
        if not line.startswith("import time:") or "cumulative" in line:
            continue
        _, cumulative, raw_name = line.split("|")
        name = raw_name[1:]  # one separating space; two more per level of nesting
        depth = (len(name) - len(name.lstrip(" "))) // 2
        if depth == 1:
            children.append((int(cumulative), name.strip()))
        elif depth == 0:
            rows.append((int(cumulative), name))
            rows += [(us, f"{name} > {child}") for us, child in children]
            children = []
    return sorted(rows, reverse=True)[:limit]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=30, help="timed runs per command")
    parser.add_argument("--warmup", type=int, default=3, help="untimed runs first")
    args = parser.parse_args()

    load_before = os.getloadavg()[0]
    times = time_commands(args.runs, args.warmup)
    load_after = os.getloadavg()[0]
    floor = statistics.median(times['python -c "import click"'])
    print(f"Median of {args.runs} runs each (after {args.warmup} warm-up), interleaved.")
    print()
    print("| command | median (ms) | min (ms) | vs import click |")
    print("|---|---:|---:|---:|")
    for name, samples in times.items():
        median = statistics.median(samples)
        print(
            f"| `{name}` | {median * 1000:.1f} | {min(samples) * 1000:.1f} "
            f"| {median / floor:.2f}x |"
        )
    print()
    ratio = statistics.median(times["sttcli --version"]) / floor
    verdict = "met" if ratio < TARGET_RATIO else "MISSED"
    print(f"sttcli --version vs import click (target < {TARGET_RATIO}x): {ratio:.2f}x - {verdict}")
    print(f"load average (1 min) at start {load_before:.2f}, at end {load_after:.2f}")

    printed, loaded = heavy_imports()
    imported = {name: modules for name, modules in loaded.items() if modules}
    print()
    print(f"Modules imported by the version path (it printed {printed!r}):")
    for name in HEAVY:
        modules = loaded[name]
        state = f"IMPORTED ({len(modules)} modules)" if modules else "not imported"
        print(f"- {name}: {state}")
    print("heavy-module check: " + ("FAILED" if imported else "passed"))

    print()
    print("Largest imports of `python -m sttcli --version` (-X importtime, cumulative):")
    for microseconds, name in slowest_imports():
        print(f"- {name}: {microseconds / 1000:.1f} ms")


if __name__ == "__main__":
    main()
