"""What reading a ``/v1/batch`` body costs per message, outside the server: decoding the JSON as
the API decodes it, then :func:`surmesure.collect.segment.validate_messages` (bounds, model,
shapes, identifiers), on the ``bench_collect`` mix of page, track and identify calls.

Each measurement runs in a child process whose ``PYTHONPATH`` starts with the code measured, so
``--baseline REF`` times a commit's code (a temporary ``git worktree``, removed afterwards) with
the same virtual environment and the same messages, the two alternating round by round so that
the machine's load falls on both. A figure is the best of ``--repeats`` passes in microseconds
per message.

    python benchmarks/bench_validate.py [--messages 20000] [--repeats 5] [--rounds 3]
        [--baseline REF] [--json]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import uuid
from pathlib import Path
from typing import Any

import orjson
from rich.console import Console
from rich.table import Table

from bench_collect import make_bodies
from gitref import run_child, sides

# run by the child: only what every version of the package has
CHILD = """
import sys, time, orjson, surmesure
from surmesure.collect.segment import validate_messages
try:
    from surmesure.collect.bounds import loads
except ImportError:
    from orjson import loads
bodies = open(sys.argv[1], "rb").read().splitlines()
repeats = int(sys.argv[2])
messages = sum(len(orjson.loads(b)["batch"]) for b in bodies)
validate_messages(loads(bodies[0])["batch"])
decode = validate = float("inf")
for _ in range(repeats):
    start = time.perf_counter()
    batches = [loads(b)["batch"] for b in bodies]
    middle = time.perf_counter()
    accepted = sum(len(validate_messages(batch)[0]) for batch in batches)
    end = time.perf_counter()
    decode, validate = min(decode, middle - start), min(validate, end - middle)
print(orjson.dumps({"decode_us": decode / messages * 1e6, "validate_us": validate / messages * 1e6,
                    "accepted": accepted, "messages": messages,
                    "package": surmesure.__file__}).decode())
"""


def measure(src: Path, bodies: Path, repeats: int) -> dict[str, Any]:
    """One child process timing the code of ``src`` on the bodies of the file ``bodies``."""
    result = run_child(src, CHILD, str(bodies), str(repeats))
    if result["accepted"] != result["messages"]:
        raise RuntimeError(f"{src}: {result['accepted']} of {result['messages']} accepted")
    return result


def compare(
    sides: dict[str, Path], messages: int, repeats: int, rounds: int
) -> dict[str, list[dict[str, Any]]]:
    """Per side, one measurement a round; the order of the sides alternates round by round."""
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in sides}
    with tempfile.TemporaryDirectory() as folder:
        bodies = Path(folder) / "bodies.jsonl"
        bodies.write_bytes(b"\n".join(make_bodies(messages, uuid.uuid4().hex[:8])))
        order = list(sides)
        for turn in range(rounds):
            for name in order if turn % 2 == 0 else order[::-1]:
                runs[name].append(measure(sides[name], bodies, repeats))
    return runs


def summary(runs: dict[str, list[dict[str, Any]]]) -> dict[str, dict[str, float]]:
    """Per side, the best decode and validation time over the rounds (µs per message)."""
    return {
        name: {
            "decode_us": min(r["decode_us"] for r in found),
            "validate_us": min(r["validate_us"] for r in found),
            "validate_us_median": statistics.median(r["validate_us"] for r in found),
        }
        for name, found in runs.items()
    }


def table(best: dict[str, dict[str, float]], baseline: str | None) -> Table:
    out = Table(title="Reading a /v1/batch body, µs per message (best of the rounds)")
    for column in ("code", "decode", "validate", "validate (median)", "validate / baseline"):
        out.add_column(column, justify="left" if column == "code" else "right")
    for name, r in best.items():
        ratio = ""
        if baseline is not None:
            ratio = f"{r['validate_us'] / best[baseline]['validate_us']:.2f}x"
        out.add_row(
            name,
            f"{r['decode_us']:.2f}",
            f"{r['validate_us']:.2f}",
            f"{r['validate_us_median']:.2f}",
            ratio,
        )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=20_000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--baseline", metavar="REF", help="a commit to compare with")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    with sides(args.baseline) as code:
        runs = compare(code, args.messages, args.repeats, args.rounds)
    base = list(code)[1] if len(code) > 1 else None
    best = summary(runs)
    if args.json:
        sys.stdout.write(orjson.dumps({"runs": runs, "best": best}).decode() + "\n")
        return
    Console().print(table(best, base))


if __name__ == "__main__":
    main()
