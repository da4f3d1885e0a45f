"""``bench_decide.py --baseline REF``: the decision API of this checkout against a commit's, in
the same run.

Each side (this checkout, REF) builds its own demo store with its own code (``surmesure demo``
in a child process whose ``PYTHONPATH`` starts with the side's ``src``: see :mod:`gitref`),
reads the ids its decisions ask for, and starts its own server (``bench_decide.py --serve``
with the side's code). Then rounds alternate the sides, their order swapped each round, so that
the load other work puts on the machine falls on both alike: in each round, per side, a closed
loop (the most it serves, and the server's CPU time per decision, which other work on the
machine hardly changes) and an open loop at the offered rate (p50/p99 of a server asked for
more or less than it keeps up with). Last, the in-process part of ``bench_decide.py`` (one
``decide()`` call: from the store, then from the serving view) runs per side in alternating
rounds on the side's store. It prints each figure per side (median of the rounds, then each
round) and the ratio this checkout / REF.

A side's key: its demo's key of the ``decide`` scope (``demo/keys.env``) when the demo writes
one, else the write key (commits before scoped keys answered decisions with it).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
from rich.console import Console
from rich.table import Table

from gitref import HEAD_SRC, checkout, describe, env_for

BENCH = Path(__file__).resolve().with_name("bench_decide.py")


@dataclass
class Side:
    """One side of the comparison: its code, store, key, requests and server."""

    name: str
    src: Path
    url: str
    folder: Path
    port: int
    key: str = ""
    payloads: list[bytes] | None = None
    server: subprocess.Popen[bytes] | None = None


def _run_json(side: Side, *args: str) -> Any:
    """``bench_decide.py ARGS`` run with the side's code; its standard output as JSON."""
    done = subprocess.run(
        [sys.executable, str(BENCH), *args],
        env=env_for(side.src, SURMESURE_DATABASE_URL=side.url),
        check=True,
        stdout=subprocess.PIPE,
    )
    return orjson.loads(done.stdout)


def prepare(side: Side, customers: int, products: int) -> None:
    """The side's demo store, built by its own code, and the requests sent to it."""
    import bench_decide

    command = [sys.executable, "-m", "surmesure.cli.main", "demo", "--customers", str(customers),
               "--out", str(side.folder / "demo"), "--json"]  # fmt: skip
    env = env_for(side.src, SURMESURE_DATABASE_URL=side.url)
    subprocess.run(command, env=env, check=True, stdout=subprocess.DEVNULL)
    held = _run_json(side, "--identifiers", side.url)
    keys_file = side.folder / "demo" / "keys.env"
    keys = (
        dict(line.split("=", 1) for line in keys_file.read_text().split())
        if (keys_file.exists())
        else {}
    )
    side.key = keys.get("SURMESURE_DEMO_DECIDE_KEY", bench_decide.WRITE_KEY)
    side.payloads = bench_decide.bodies(held["customers"], held["visitors"], 20_000, products)


def start(side: Side) -> None:
    """The side's server, once it answers."""
    import bench_decide

    env = env_for(side.src, SURMESURE_DATABASE_URL=side.url)
    side.server = bench_decide.start_server(side.url, side.port, env)


def stop(side: Side) -> None:
    if side.server is not None:
        side.server.terminate()
        side.server.wait(timeout=60)
        side.server = None


@contextmanager
def _databases(folder: Path, postgres: str | None, names: list[str]) -> Iterator[list[str]]:
    import bench_decide

    with ExitStack() as stack:
        urls = []
        for name in names:
            (folder / name).mkdir()
            urls.append(stack.enter_context(bench_decide.database(folder / name, postgres)))
        yield urls


def compare(args: argparse.Namespace) -> dict[str, Any]:
    """Per side: each round's closed loop, open loop and in-process figures (see the module)."""
    import bench_decide

    runs: dict[str, dict[str, list[Any]]] = {}
    with checkout(args.baseline) as baseline_src, tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        names = ["head", "baseline"]
        with _databases(folder, args.postgres, names) as urls:
            sides = [
                Side(name, src, url, folder / name, args.port + i)
                for i, (name, src, url) in enumerate(
                    zip(names, [HEAD_SRC, baseline_src], urls, strict=True)
                )
            ]
            for side in sides:
                prepare(side, args.customers, args.products)
                runs[side.name] = {"closed": [], "open": [], "inprocess": []}
            try:
                for side in sides:
                    start(side)
                    assert side.payloads is not None
                    # warm up: the view, the model, the stock; then let the server finish
                    # what it builds in the background, so that no round measures it
                    asyncio.run(bench_decide.closed_loop(side.port, side.payloads, 4, 3, side.key))
                    assert side.server is not None
                    bench_decide.wait_idle(side.server.pid)
                for turn in range(args.rounds):
                    for side in sides if turn % 2 == 0 else sides[::-1]:
                        assert side.payloads is not None
                        assert side.server is not None
                        closed = bench_decide.closed_loop(
                            side.port, side.payloads, args.clients, args.seconds, side.key,
                            pid=side.server.pid,
                        )  # fmt: skip
                        runs[side.name]["closed"].append(asyncio.run(closed))
                        opened = bench_decide.open_loop(
                            side.port, "/v1/decide", side.payloads, args.rate, args.seconds,
                            key=side.key,
                        )  # fmt: skip
                        runs[side.name]["open"].append(asyncio.run(opened))
            finally:
                for side in sides:
                    stop(side)
            if args.postgres is None and not args.skip_inprocess:
                for turn in range(args.rounds):
                    for side in sides if turn % 2 == 0 else sides[::-1]:
                        db = side.url.removeprefix("duckdb:///")
                        found = _run_json(
                            side, "--skip-render", "--skip-api", "--db", db,
                            "--calls", str(args.calls), "--products", str(args.products), "--json",
                        )  # fmt: skip
                        runs[side.name]["inprocess"].append(found["inprocess"])
    return runs


def _median(rounds: list[dict[str, Any]], *path: str) -> float:
    values = []
    for found in rounds:
        for step in path:
            found = found[step]
        values.append(float(found))  # type: ignore[arg-type]
    return statistics.median(values)


FIGURES = [
    ("closed loop decisions/s", "closed", ("throughput_per_s",), "{:,.0f}"),
    ("server CPU ms per decision", "closed", ("server_cpu_ms_per_request",), "{:.3f}"),
    ("closed loop p50 ms", "closed", ("p50_ms",), "{:.2f}"),
    ("closed loop p99 ms", "closed", ("p99_ms",), "{:.2f}"),
    ("open loop served/s", "open", ("served_rate",), "{:,.0f}"),
    ("open loop p50 ms", "open", ("p50_ms",), "{:.2f}"),
    ("open loop p99 ms", "open", ("p99_ms",), "{:.2f}"),
    ("in process, from the store: p50 ms", "inprocess", ("decide", "p50_ms"), "{:.2f}"),
    ("in process, from the store: decisions/s", "inprocess", ("decisions_per_s",), "{:,.0f}"),
    ("in process, served: p50 ms", "inprocess", ("served", "p50_ms"), "{:.3f}"),
    ("in process, served: p99 ms", "inprocess", ("served", "p99_ms"), "{:.3f}"),
    ("in process, served: decisions/s", "inprocess", ("served", "decisions_per_s"), "{:,.0f}"),
    ("in process, serving view build s", "inprocess", ("served", "view_build_s"), "{:.2f}"),
]


def summary(runs: dict[str, dict[str, list[Any]]]) -> list[dict[str, Any]]:
    """Each figure: both sides' medians, each round, and the ratio this checkout / REF."""
    out = []
    for label, part, path, _ in FIGURES:
        if not runs["head"][part] or not runs["baseline"][part]:
            continue
        head, base = _median(runs["head"][part], *path), _median(runs["baseline"][part], *path)
        out.append(
            {
                "figure": label,
                "head": head,
                "baseline": base,
                "ratio": head / base if base else float("nan"),
                "head_rounds": [_median([r], *path) for r in runs["head"][part]],
                "baseline_rounds": [_median([r], *path) for r in runs["baseline"][part]],
            }
        )
    return out


def table(rows: list[dict[str, Any]], args: argparse.Namespace) -> Table:
    head, base = f"{describe('HEAD')}+", describe(args.baseline)
    found = Table(
        title=f"POST /v1/decide, {args.customers:,} customers, {args.clients} clients closed "
        f"loop, {args.rate:,.0f}/s offered, {args.seconds:g} s each: this checkout ({head}) "
        f"against {base}, {args.rounds} alternating rounds (medians; each round)"
    )
    for column in ("figure", head, base, f"{head} / {base}", f"{head} rounds", f"{base} rounds"):
        found.add_column(column, justify="left" if column == "figure" else "right")
    formats = {label: fmt for label, _, _, fmt in FIGURES}
    for row in rows:
        fmt = formats[row["figure"]]
        found.add_row(
            row["figure"],
            fmt.format(row["head"]),
            fmt.format(row["baseline"]),
            f"{row['ratio']:.2f}x",
            " ".join(fmt.format(v) for v in row["head_rounds"]),
            " ".join(fmt.format(v) for v in row["baseline_rounds"]),
        )
    return found


def main(args: argparse.Namespace) -> None:
    runs = compare(args)
    rows = summary(runs)
    if args.json:
        report = {"runs": runs, "summary": rows}
        sys.stdout.write(orjson.dumps(report, option=orjson.OPT_INDENT_2).decode() + "\n")
        return
    Console(width=None if sys.stdout.isatty() else 200).print(table(rows, args))
