"""Another commit's code beside this checkout's, for benchmarks that compare the two: a
temporary ``git worktree`` of the commit, removed afterwards, whose ``src`` a child process
puts first on ``PYTHONPATH`` (the same virtual environment runs both)."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import orjson

ROOT = Path(__file__).resolve().parents[1]
HEAD_SRC = ROOT / "src"
"""The code of this checkout, as it is on disk (uncommitted changes included)."""


def _git(*args: str) -> str:
    done = subprocess.run(
        ["git", "-C", str(ROOT), *args], capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise SystemExit(f"git {' '.join(args)}: {done.stderr.strip()}")
    return done.stdout.strip()


def describe(ref: str) -> str:
    """``ref`` as a short commit id (``HEAD`` included)."""
    return _git("rev-parse", "--short", f"{ref}^{{commit}}")


@contextmanager
def checkout(ref: str) -> Iterator[Path]:
    """The ``src`` folder of ``ref`` in a temporary worktree (detached), removed on exit."""
    describe(ref)  # an unknown ref stops here, naming it
    with tempfile.TemporaryDirectory(prefix="surmesure-baseline-") as folder:
        path = Path(folder) / "tree"
        _git("worktree", "add", "--detach", "--quiet", str(path), ref)
        try:
            yield path / "src"
        finally:
            _git("worktree", "remove", "--force", str(path))
            _git("worktree", "prune")


@contextmanager
def sides(baseline: str | None) -> Iterator[dict[str, Path]]:
    """The code to time, by name: this checkout's, then ``baseline``'s (a temporary worktree,
    removed on exit) when one is given."""
    head = f"this checkout ({describe('HEAD')}+)"
    if baseline is None:
        yield {head: HEAD_SRC}
        return
    with checkout(baseline) as src:
        yield {head: HEAD_SRC, describe(baseline): src}


def env_for(src: Path, **extra: str) -> dict[str, str]:
    """This process's environment with ``src`` first on ``PYTHONPATH``."""
    return {**os.environ, "PYTHONPATH": str(src), **extra}


def run_child(src: Path, code: str, *args: str) -> dict[str, Any]:
    """The JSON object the last line of ``python -c code args`` prints, run with the code of
    ``src`` first on the path; the child must print ``package`` (``surmesure.__file__``),
    which must be under ``src``."""
    done = subprocess.run(
        [sys.executable, "-c", code, *args], env=env_for(src), capture_output=True, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(done.stderr.decode()[-2000:])
    result: dict[str, Any] = orjson.loads(done.stdout.splitlines()[-1])
    if not result["package"].startswith(str(src)):
        raise RuntimeError(f"the child imported {result['package']}, not the code of {src}")
    return result
