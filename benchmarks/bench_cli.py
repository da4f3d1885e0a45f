"""Start-up of the ``surmesure`` command: each call in a fresh interpreter, the way a user runs
it, timed as the median of ``--repeat`` runs, with commands loaded on demand (as shipped) and
every command module imported and registered up front (the baseline), alternating run by run.

``status`` runs on ``--database`` when given (e.g. the demo world, ``demo/surmesure.duckdb``),
else on a fresh empty DuckDB file.

    python benchmarks/bench_cli.py [--repeat 7] [--database URL] [--json]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Any

import orjson
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

ON_DEMAND = "from surmesure.cli.main import app; app()"
UP_FRONT = (
    "import importlib, typer\n"
    "from surmesure.cli.main import COMMANDS, app\n"
    "eager = typer.Typer(name='surmesure', add_completion=False)\n"
    "for module in dict.fromkeys(m for e in COMMANDS.values() for m in e.modules):\n"
    "    importlib.import_module(module).register(eager)\n"
    "eager()"
)
CALLS = {"--help": ["--help"], "key --help": ["key", "--help"], "status": ["status"]}


def _seconds(code: str, args: list[str], env: dict[str, str]) -> float:
    started = time.perf_counter()
    subprocess.run(
        [sys.executable, "-c", code, *args], env=env, check=True, capture_output=True, text=True
    )
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--database", default=None)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        url = args.database or f"duckdb:///{tmp}/empty.duckdb"
        env = {**os.environ, "SURMESURE_DATABASE_URL": url}
        _seconds(ON_DEMAND, ["db", "upgrade"], env)  # migrate once, outside the timing
        times: dict[str, dict[str, list[float]]] = {
            c: {"on demand": [], "up front": []} for c in CALLS
        }
        with Progress(transient=True) as progress:
            task = progress.add_task("start-up", total=args.repeat * len(CALLS))
            for _ in range(args.repeat):
                for call, argv in CALLS.items():
                    times[call]["on demand"].append(_seconds(ON_DEMAND, argv, env))
                    times[call]["up front"].append(_seconds(UP_FRONT, argv, env))
                    progress.advance(task)
    result: dict[str, Any] = {
        call: {mode: round(statistics.median(runs), 3) for mode, runs in modes.items()}
        for call, modes in times.items()
    }
    if args.json:
        print(orjson.dumps(result, option=orjson.OPT_INDENT_2).decode())
        return
    table = Table(title=f"surmesure start-up, median of {args.repeat} runs (seconds)")
    for column in ("call", "on demand", "up front", "ratio"):
        table.add_column(column, justify="left" if column == "call" else "right")
    for call, row in result.items():
        table.add_row(
            call,
            f"{row['on demand']:.3f}",
            f"{row['up front']:.3f}",
            f"{row['up front'] / row['on demand']:.1f}x faster",
        )
    Console().print(table)


if __name__ == "__main__":
    main()
