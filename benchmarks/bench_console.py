"""The console's pages: how long the server takes to render each one, on a demo world.

The API server runs in this process (uvicorn in a thread) on a copy of a demo store
(``--db FILE``, default ``demo/surmesure.duckdb`` from ``make demo``; without one, a demo world
of ``--customers`` is built first). An admin signs in; the pages are found by following the
console's links from the home page (the menu, then each section's links, up to ``--pages``),
and each is fetched ``--rounds`` times after a first, warming fetch. The server's time of each
request is measured inside the app (an ASGI wrapper around it: from the request's arrival to
its last byte), so the client's own time is left out. Printed per page: the first fetch (caches
cold: the home page's figures are computed at most every 5 minutes), the median and 95th
percentile in ms, against the issue's 300 ms, and the ratio to ``/health`` measured the same
way in the same run (the server's fixed cost of a request).

    python benchmarks/bench_console.py [--db FILE] [--customers 3000] [--rounds 5] [--pages 60]
"""

from __future__ import annotations

import argparse
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable, MutableMapping
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from rich.console import Console
from rich.progress import track
from rich.table import Table

from surmesure.api.app import create_app
from surmesure.config import Settings
from surmesure.protect.users import create_user
from surmesure.store import open_store

TARGET_MS = 300.0
PASSWORD = "bench console passphrase"
SKIP = re.compile(r"/console/(logout|static/|login)|/export|/erase|\.json$|/download")
Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Any]]
ASGI = Callable[[Scope, Receive, Callable[[Any], Awaitable[None]]], Awaitable[None]]


class Timed:
    """The app, with the time of each request (arrival to last byte) kept per path."""

    def __init__(self, app: ASGI) -> None:
        self.app = app
        self.times: dict[str, list[float]] = defaultdict(list)

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        await self.app(scope, receive, send)
        self.times[scope["path"]].append((time.perf_counter() - start) * 1000)


def demo_store(customers: int, folder: Path) -> Path:
    db = folder / "demo.duckdb"
    command = [
        sys.executable,
        "-m",
        "surmesure.cli.main",
        "demo",
        "--customers",
        str(customers),
        "--out",
        str(folder / "world"),
        "--no-send",
        "--json",
    ]
    env = {"SURMESURE_DATABASE_URL": f"duckdb:///{db}", "PATH": "/usr/bin:/bin"}
    subprocess.run(command, env=env, check=True, capture_output=True)
    return db


def links(html: str) -> list[str]:
    found = re.findall(r'href="(/console/[^"#]*)"', html)
    return [f.replace("&amp;", "&") for f in found if not SKIP.search(f)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", type=Path, default=Path("demo/surmesure.duckdb"))
    parser.add_argument("--customers", type=int, default=3000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--pages", type=int, default=60)
    args = parser.parse_args()
    out = Console()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        source = args.db if args.db.exists() else demo_store(args.customers, folder)
        copy = folder / "bench.duckdb"
        shutil.copyfile(source, copy)
        store = open_store(f"duckdb:///{copy}")
        create_user(store, "bench@console.test", PASSWORD, "admin", replace=True)
        settings = Settings(database_url=store.url, dev_mode=True)  # as `serve --dev` on the demo
        timed = Timed(create_app(settings, store))
        config = uvicorn.Config(timed, host="127.0.0.1", port=0, log_level="warning")
        server = uvicorn.Server(config)
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        while not server.started:
            time.sleep(0.02)
        port = server.servers[0].sockets[0].getsockname()[1]
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60) as client:
            form = client.get("/console/login").text
            token = re.search(r'name="csrf" value="([^"]+)"', form)
            assert token is not None
            client.post(
                "/console/login",
                data={"csrf": token.group(1), "email": "bench@console.test", "password": PASSWORD},
            )
            pages, seen = ["/console/"], {"/console/"}
            i = 0
            while i < len(pages) and len(pages) < args.pages:
                for link in links(client.get(pages[i]).text):
                    if link not in seen and len(pages) < args.pages:
                        seen.add(link)
                        pages.append(link)
                i += 1
            first = {path: values[0] for path, values in timed.times.items()}
            timed.times.clear()
            for _ in track(range(args.rounds), description="fetching pages", console=out):
                client.get("/health")
                for path in pages:
                    client.get(path)
        server.should_exit = True
        thread.join(timeout=20)
        store.dispose()
    health = statistics.median(timed.times["/health"])
    table = Table(title=f"console pages, server time over {args.rounds} rounds (ms)")
    for column in ("page", "first", "median", "p95", "under 300 ms", "x /health"):
        table.add_column(column, justify="left" if column == "page" else "right")
    slowest = 0.0
    for path in pages:
        path_only = path.split("?")[0]
        values = sorted(timed.times.get(path_only, []))
        if not values:
            continue
        p95 = values[min(len(values) - 1, int(0.95 * len(values)))]
        slowest = max(slowest, p95)
        table.add_row(
            path,
            f"{first.get(path_only, float('nan')):.1f}",
            f"{statistics.median(values):.1f}",
            f"{p95:.1f}",
            "yes" if p95 < TARGET_MS else "[red]no[/]",
            f"{statistics.median(values) / health:.0f}x",
        )
    out.print(table)
    out.print(
        f"/health: {health:.2f} ms median; slowest page p95: {slowest:.1f} ms "
        f"({'under' if slowest < TARGET_MS else 'over'} {TARGET_MS:.0f} ms)"
    )


if __name__ == "__main__":
    main()
