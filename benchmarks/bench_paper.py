"""Paper: ``--letters`` letters to one print-ready PDF and its manifest
(:class:`~surmesure.deliver.paper.PaperChannel`, laid out by ``--workers`` processes), this
checkout's code beside ``--baseline REF``'s.

Each measurement runs in a child process whose ``PYTHONPATH`` starts with the code measured (a
temporary ``git worktree`` for the baseline, removed afterwards); the two alternate round by
round so that the machine's load falls on both. The child checks the PDF with ``pypdf``: one
page count per letter in the manifest adding up to the PDF's, and a letter's own words on its
first page. Figures: letters per second (wall clock: the other processes of a loaded machine
weigh on it), the processor time per letter (the layout workers' included: steadier), of which
the parent's own (sorting, joining the chunks' PDFs), and from it the seconds 10,000 letters
would take on two idle cores. The issue's figure: 10,000 letters in under 60 s.

    python benchmarks/bench_paper.py [--letters 10000] [--workers 2] [--rounds 1]
        [--baseline REF] [--json]
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import orjson
from rich.console import Console
from rich.table import Table

from gitref import run_child, sides

CHILD = """
import csv, resource, sys, tempfile, time, orjson, surmesure
from pathlib import Path
from pypdf import PdfReader
from surmesure.deliver.channel import Message
from surmesure.deliver.paper import PaperChannel, PaperSettings
count, workers = int(sys.argv[1]), int(sys.argv[2])

def cpu(who):
    used = resource.getrusage(who)
    return used.ru_utime + used.ru_stime

letters = [
    Message(f"l{i:05d}", "paper",
            f"Client {i}\\n{i % 90 + 1} rue des Lilas\\n{69000 + i % 10:05d} LYON",
            f"Chère cliente {i},\\n\\n" + "Voici nos offres de saison pour vous. " * 15,
            person_id=i)
    for i in range(count)
]
with tempfile.TemporaryDirectory() as folder:
    channel = PaperChannel(PaperSettings(folder=Path(folder), return_address="Maison, Lyon",
                                         workers=workers))
    start, own, pool = time.perf_counter(), cpu(resource.RUSAGE_SELF), cpu(resource.RUSAGE_CHILDREN)
    results = channel.send(letters)
    seconds = time.perf_counter() - start
    own, pool = cpu(resource.RUSAGE_SELF) - own, cpu(resource.RUSAGE_CHILDREN) - pool
    assert all(r.outcome == "sent" for r in results)
    [pdf] = Path(folder).glob("*.pdf")
    with pdf.with_suffix(".csv").open(newline="") as manifest:
        rows = list(csv.DictReader(manifest))
    reader = PdfReader(pdf)
    pages = len(reader.pages)
    assert pages == sum(int(r["pages"]) for r in rows) == sum(r.units for r in results)
    last = rows[-1]
    text = reader.pages[int(last["first_page"]) - 1].extract_text()
    assert f"Client {last['person_id']}" in text and f"cliente {last['person_id']}" in text
sys.stdout.write(orjson.dumps({"seconds": seconds, "own": own, "pool": pool, "pages": pages,
                               "package": surmesure.__file__}).decode())
"""


def measure(src: Path, letters: int, workers: int) -> dict[str, float]:
    """One child process sending ``letters`` with the code of ``src``."""
    got = run_child(src, CHILD, str(letters), str(workers))
    cpu = got["own"] + got["pool"]
    return {
        "letters_per_s": letters / got["seconds"],
        "cpu_ms_per_letter": 1000 * cpu / letters,
        "parent_cpu_ms_per_letter": 1000 * got["own"] / letters,
        "idle_2_cores_s_for_10000": 10_000 * cpu / letters / 2,
        "pdf_pages": got["pages"],
    }


def compare(sides: dict[str, Path], args: argparse.Namespace) -> dict[str, dict[str, float]]:
    """Per side, the best of the rounds (least CPU); sides alternate round by round."""
    best: dict[str, dict[str, float]] = {}
    order = list(sides)
    for turn in range(args.rounds):
        for name in order if turn % 2 == 0 else order[::-1]:
            got = measure(sides[name], args.letters, args.workers)
            if name not in best or got["cpu_ms_per_letter"] < best[name]["cpu_ms_per_letter"]:
                best[name] = got
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--letters", type=int, default=10_000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--baseline", metavar="REF", help="a commit to compare with")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    with sides(args.baseline) as code:
        figures = compare(code, args)
    load = os.getloadavg()[0]
    if args.json:
        sys.stdout.write(orjson.dumps({"load": load, **figures}).decode() + "\n")
        return
    table = Table(
        "code", "letters/s", "CPU ms/letter", "ratio", "of which parent", "idle 2 cores, 10,000"
    )
    first = next(iter(figures.values()))
    for name, got in figures.items():
        cpu = got["cpu_ms_per_letter"]
        table.add_row(
            name,
            f"{got['letters_per_s']:.1f}",
            f"{cpu:.2f}",
            f"{cpu / first['cpu_ms_per_letter']:.2f}",
            f"{got['parent_cpu_ms_per_letter']:.2f}",
            f"{got['idle_2_cores_s_for_10000']:.0f} s",
        )
    Console().print(table)
    Console().print(f"{args.letters:,} letters, {args.workers} workers, load {load:.1f}")


if __name__ == "__main__":
    main()
