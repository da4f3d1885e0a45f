"""The README's tour of the CLI, command by command, on the small demo world: each exits 0
and prints what it did (:data:`SAYS`). Ids and the e-mail in the README stand for ones the store
shows; they are replaced by real ones here, and the sizes by small ones. As for a newcomer who
ran ``make demo`` first, the tour starts from the demo world (the session's, copied), so its
``surmesure demo`` runs again on it; the first build is tested by ``test_demo_cli``. The
Online Retail file is imported from a copy of its first lines (the whole file's import is
tested in ``tests/collect``). ``serve`` runs as a process of its own on a free port until it
answers ``/health``, then is stopped. The lines reading the public datasets run when they are
present."""

from __future__ import annotations

import gc
import gzip
import os
import re
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from api_helpers import free_port
from world_helpers import SMALL

from conftest import DATASETS, ROOT, copy_demo, invoke
from surmesure.protect import blind
from surmesure.store import open_store, schema

SHARED = "../shared/datasets/"
ONLINE_RETAIL_LINES = 20_000
NOTHING_NEW = r"accepted \(new\)\s+│\s+0 │"  # the demo's files imported again add nothing
SAYS: dict[str, tuple[str, ...]] = {
    # what each command prints when it did its work: regular expressions, where {person},
    # {merge}, {record} and {email} stand for the ids the tour uses
    "generate --customers": (r"demo world in world", r"customers_crm\.csv\s+│ customers"),
    "demo --customers": (r"demo: [\d,]+ customers into duckdb",),
    "import stores": (NOTHING_NEW, r"already stored\s+│\s+[1-9]"),
    "import products": (NOTHING_NEW, r"already stored\s+│\s+[1-9]"),
    "import customers": (NOTHING_NEW, r"already stored\s+│\s+[1-9]"),
    "import orders": (r"accepted \(new\)\s+│\s+[1-9][\d,]* │", r"rows written to orders"),
    "import events": (r"accepted\s+│\s+0 │", r"duplicate\s+│\s+[1-9]"),
    "status": (r"identified \(customer id\)\s+│\s+[1-9]", r"quarantined records: [1-9]"),
    "quarantine list": (r"quarantined records: [1-9]",),
    "quarantine show": (r"quarantined record {record}\b", r"payload \(the record as read\)"),
    "quarantine replay": (r"replayed\s+│\s+[1-9]",),
    "segment size": (r"lyon_loyal: people left after each condition",),
    "person show": (r"person {person} ", r"{email}", r"traits \(resolved by reliability"),
    "person unmerge": (r"Merge {merge} undone",),
    "person export": (r"person {person} exported",),
    "person erase": (r"person {person} erased",),
    "serve --dev": (r"surmesure API on http://127\.0\.0\.1:\d+",),
    "key create": (r"key shop-backend \(decide, read\)", r"shown once"),
    "key list": (r"shop-backend\s+│ decide,read",),
    "key revoke": (r"key shop-backend revoked",),
    "audit list": (r"person\.erase\s+│ {person}\b",),
    "experiment analyze": (r"channel = Multichannel", r"Fieller"),
    "dispatch status": (r"segment_membership",),
    "dispatch drain": (r"segment_membership: \d+ effects",),
}


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
    # every command is checked for what it says it did
    assert set(names) == set(SAYS)


def test_every_tour_command_runs_on_the_demo_world(
    demo_world: tuple[Path, dict[str, Any]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("COLUMNS", "200")
    url = copy_demo(demo_world[0], tmp_path, files="demo")
    sizes = {"1000000": "300", "50000": str(SMALL)}
    ran, ids, named = [], {}, {}
    for args in tour():
        args = [_dataset(a[len(SHARED) :], tmp_path) if a.startswith(SHARED) else a for a in args]
        if not all(Path(a).exists() for a in args if a.startswith(str(DATASETS))):
            continue
        takes_ids = args[:2] == ["quarantine", "show"] or args[0] in ("person", "audit")
        if takes_ids and not ids:
            ids = real_ids(url)
            named = {k: re.escape(ids[v]) for k, v in PLACEHOLDERS.items()}
            named["email"] = re.escape(ids["email:marie.dupont@example.com"][6:])
        args = [sizes.get(a, a) for a in args]
        args = [ids.get(a, a) if _is_placeholder(args, i) else a for i, a in enumerate(args)]
        if args[0] == "serve":
            exit_code, output = _serve(url, args, tmp_path)
        else:
            result = invoke(monkeypatch, url, *args)
            exit_code, output = result.exit_code, result.output
        assert exit_code == 0, (args, output)
        name = " ".join(args[:2])
        for said in SAYS[name]:
            assert re.search(said.format(**named), output), (args, said, output)
        ran.append(name)
        if args[:2] == ["segment", "size"]:
            # the shipped segment finds people: the last count of --explain is not 0
            counts = re.findall(r"│\s+([\d,]+) │", result.output)
            assert counts and counts[-1] != "0", output
    assert "person erase" in ran and "serve --dev" in ran and "quarantine replay" in ran
    assert (tmp_path / "marie.json").stat().st_size > 0
    assert (tmp_path / "world" / "manifest.json").exists()
    assert (tmp_path / "demo" / "report.html").exists()


PLACEHOLDERS = {"record": "12", "person": "42", "merge": "7"}


def _serve(url: str, args: list[str], folder: Path) -> tuple[int, str]:
    """``surmesure serve`` as written but on a free port, as a process of its own until it
    answers ``/health``, then stopped as Ctrl-C stops it: its exit code and output."""
    # each command of the tour ran in this process; a newcomer's ran in processes of their own,
    # which closed the store file as they ended (segment commands leave closing it to that)
    gc.collect()
    port = str(free_port())
    written = [port if a == "8080" else a for a in args]
    command = [sys.executable, "-m", "surmesure.cli.main", *written]
    log = folder / "serve.log"
    env = {**os.environ, "SURMESURE_DATABASE_URL": url}
    with log.open("wb") as out:
        server = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while server.poll() is None and time.monotonic() < deadline:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        else:
            return server.poll() or -1, log.read_text()
    finally:
        server.send_signal(signal.SIGINT)
        server.wait(timeout=60)
    return server.returncode, log.read_text()


def _dataset(relative: str, tmp_path: Path) -> str:
    """The public dataset's path; the Online Retail file as a copy of its first lines."""
    path = DATASETS / relative
    if not path.name.startswith("online_retail") or not path.exists():
        return str(path)
    head = tmp_path / path.name
    with gzip.open(path, "rt", encoding="utf-8") as full, gzip.open(head, "wt") as cut:
        for n, line in enumerate(full):
            if n > ONLINE_RETAIL_LINES:
                break
            cut.write(line)
    return str(head)


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
