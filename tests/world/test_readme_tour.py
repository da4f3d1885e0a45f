"""The README's tour of the CLI, command by command, on a small demo world: each exits 0 and
prints something. Ids and the e-mail in the README stand for ones the store shows; they are
replaced by real ones here, and the sizes by small ones. ``serve`` runs until stopped (the API
tests serve it); the lines reading the public datasets run when they are present."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
import sqlalchemy as sa
from world_helpers import SMALL

from conftest import DATASETS, ROOT, invoke
from surmesure.protect import blind
from surmesure.store import open_store, schema

SHARED = "../shared/datasets/"


def tour() -> list[list[str]]:
    """The commands of the tour's code block, continuation lines joined, comments dropped."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("## A tour of the CLI", 1)[1].split("\n## ", 1)[0]
    lines: list[str] = []
    for line in section.splitlines():
        if not line.startswith("    "):
            continue
        if lines and lines[-1].endswith("\\"):
            lines[-1] = lines[-1][:-1] + line.strip()
        elif line.strip().startswith("surmesure "):
            lines.append(line.strip())
    return [shlex.split(line, comments=True)[1:] for line in lines]


def test_tour_lists_the_commands_it_walks() -> None:
    names = [" ".join(args[:2]) for args in tour()]
    assert names[:2] == ["generate --customers", "demo --customers"]
    assert "quarantine replay" in names and "person erase" in names
    assert len(names) >= 20


def test_every_tour_command_runs_on_the_demo_world(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("COLUMNS", "200")
    url = f"duckdb:///{tmp_path / 'store.duckdb'}"
    sizes = {"1000000": "300", "50000": str(SMALL)}
    ran, ids = [], {}
    for args in tour():
        if args[0] == "serve":
            continue
        args = [str(DATASETS / a[len(SHARED) :]) if a.startswith(SHARED) else a for a in args]
        if not all(Path(a).exists() for a in args if a.startswith(str(DATASETS))):
            continue
        if args[:2] == ["quarantine", "show"] or args[0] in ("person", "audit"):
            ids = ids or real_ids(url)
        args = [sizes.get(a, a) for a in args]
        args = [ids.get(a, a) if _is_placeholder(args, i) else a for i, a in enumerate(args)]
        result = invoke(monkeypatch, url, *args)
        assert result.exit_code == 0, (args, result.output)
        assert result.output.strip(), args
        ran.append(" ".join(args[:2]))
        if args[:2] == ["segment", "size"]:
            # the shipped segment finds people: the last count of --explain is not 0
            counts = re.findall(r"│\s+([\d,]+) │", result.output)
            assert counts and counts[-1] != "0", result.output
    assert "person erase" in ran and "quarantine replay" in ran
    assert (tmp_path / "marie.json").stat().st_size > 0
    assert (tmp_path / "demo" / "report.html").exists()


def _is_placeholder(args: list[str], i: int) -> bool:
    return args[i] in ("12", "42", "7", "email:marie.dupont@example.com")


def real_ids(url: str) -> dict[str, str]:
    """A quarantined record, a merge with its survivor (who has an e-mail), for the README's
    placeholders."""
    store = open_store(url)
    try:
        with store.connect() as conn:
            record = conn.execute(
                sa.select(sa.func.min(schema.quarantine.c.quarantine_id))
            ).scalar_one()
            ident = schema.identifiers
            merge = conn.execute(
                sa.select(
                    schema.merges.c.merge_id,
                    schema.merges.c.survivor_id,
                    ident.c.node_id,
                    ident.c.sealed,
                )
                .join(ident, ident.c.person_id == schema.merges.c.survivor_id)
                .where(ident.c.kind == "email", schema.merges.c.undone_at.is_(None))
                .order_by(schema.merges.c.merge_id)
                .limit(1)
            ).one()
            (email,) = blind.ring(store).open_many(conn, [merge.node_id], [merge.sealed])
    finally:
        store.dispose()
    return {
        "12": str(record),
        "42": str(merge.survivor_id),
        "7": str(merge.merge_id),
        "email:marie.dupont@example.com": f"email:{email}",
    }
