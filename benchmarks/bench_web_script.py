"""The web script: how soon after the page's load its placement is filled, on loopback.

``surmesure serve`` runs as a process of its own on a fresh DuckDB store (the shipped
templates, the demo shop's pages at /shop/), and Debian's Chromium, driven by Playwright,
loads three pages ``--loads`` times each, one after the other:

- ``script``: the demo shop's page, whose ``home_banner`` the web script fills (one
  ``/v1/web/decide`` call after the script ran; the script itself comes from the browser's
  cache, as on a shop's second page), for ``--visitors`` returning visitors (a browser
  context each, with its cookie) taking turns, so that each comes back some seconds after
  their last view was stored, as people browse;
- ``script, new visitor``: the same, its cookies cleared first (a first visit: the server
  issues an anonymous id);
- ``baseline``: the same page with the banner's content written in it by the server (a plain
  server-side render), marked filled by an inline script where the parser meets it.

For each load, the time the banner was filled (a ``performance.mark`` the script sets) is read
against the page's load event (``loadEventStart``) and its navigation start; printed: their
median and 95th percentile for each page, the script's minus the baseline's, against the
issue's 50 ms (p95 of filled - load), the decide call's own time (Resource Timing), and the
processor time the server spent per round of loads (its own CPU time, read from /proc). Wall
times are of a shared machine: the baseline, measured in the same run, is the yardstick.

    python benchmarks/bench_web_script.py [--loads 200] [--visitors 20] [--port 18380]
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
from playwright.sync_api import sync_playwright
from rich.console import Console
from rich.progress import track
from rich.table import Table

from surmesure.protect.keys import create_key
from surmesure.store import open_store
from surmesure.web.shop import shop_page, write_shop

TARGET_MS = 50.0
CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]  # fmt: skip
MEASURE = """() => {
  const nav = performance.getEntriesByType("navigation")[0];
  const filled = performance.getEntriesByName("surmesure:filled:home_banner")[0];
  const call = performance.getEntriesByType("resource").filter(
    (e) => e.name.endsWith("/v1/web/decide"))[0];
  return filled ? {load: nav.loadEventStart, filled: filled.startTime,
                   call: call ? call.responseEnd - call.startTime : 0,
                   wait: call ? call.responseStart - call.requestStart : 0,
                   connect: call ? call.connectEnd - call.startTime : 0} : null;
}"""
FILLED_INLINE = (
    '<script>performance.mark("surmesure:filled:home_banner");'
    'document.querySelector("[data-surmesure-placement]")'
    '.setAttribute("data-surmesure-state", "filled");</script>'
)


def server_cpu(pid: int) -> float:
    """Processor seconds (user + system) the process ``pid`` has used."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def start(folder: Path, port: int) -> tuple[subprocess.Popen[bytes], str, str]:
    """The server, its base URL and a web key for its own origin."""
    url = f"duckdb:///{folder / 'store.duckdb'}"
    base = f"http://127.0.0.1:{port}"
    store = open_store(url)  # migrated here, the key stored before the server holds the file
    try:
        key = create_key(store, "bench", ["web"], source="web", origins=[base])[0]
    finally:
        store.dispose()
    env = {
        **os.environ,
        "SURMESURE_DATABASE_URL": url,
        "SURMESURE_SHOP_DIR": str(folder / "shop"),
        "SURMESURE_SECRET_KEY": "bench-web-script-secret",
        "SURMESURE_WRITE_KEYS": "{}",
        "SURMESURE_SUPPRESSION_KEY": "bench-web-script-suppression",
        "SURMESURE_ENCRYPTION_KEY": "bench-web-script-encryption",
        # one returning visitor loads the page hundreds of times a minute
        "SURMESURE_WEB_VISITOR_RATE_LIMIT": "100000/second",
        "SURMESURE_WEB_NEW_VISITOR_RATE_LIMIT": "100000/second",
        "SURMESURE_JOURNEY_PERIOD_SECONDS": "0",
        "SURMESURE_SCHEDULE": "off",
    }
    command = [sys.executable, "-m", "surmesure.cli.main", "serve", "--port", str(port),
               "--log-level", "warning"]  # fmt: skip
    log = (folder / "server.log").open("wb")
    server = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{base}/health", timeout=0.5).status_code == 200:
                return server, base, key
        except httpx.HTTPError:
            time.sleep(0.1)
    server.kill()
    raise RuntimeError((folder / "server.log").read_text()[-2000:])


def baseline_page(base: str, key: str) -> str:
    """The shop's page with the banner filled by the server, as a plain server-side render."""
    found = httpx.post(f"{base}/v1/web/decide", json={"key": key, "placements": ["home_banner"]})
    html = found.json()["placements"][0]["html"]
    page = shop_page(key, script="data:text/javascript,")
    start = page.index('data-surmesure-placement="home_banner">') + len(
        'data-surmesure-placement="home_banner">'
    )
    end = page.index("</section>", start)
    return (
        page[:start] + f'<div class="surmesure-content">{html}</div>' + page[end:] + FILLED_INLINE
    )


def percentile(values: list[float], q: float) -> float:
    return (
        statistics.quantiles(values, n=100, method="inclusive")[q - 1]
        if len(values) > 1
        else values[0]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--loads", type=int, default=200, help="Loads of each page.")
    parser.add_argument("--port", type=int, default=18380, help="The server's port.")
    parser.add_argument(
        "--visitors", type=int, default=20, help="Returning visitors taking turns (browsers)."
    )
    args = parser.parse_args()
    out = Console()
    clock = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="bench-web-") as tmp:
        folder = Path(tmp)
        write_shop(folder / "shop", "pending")
        server, base, key = start(folder, args.port)
        try:
            write_shop(folder / "shop", key, {"baseline.html": baseline_page(base, key)})
            pages = {"script": "/shop/", "script, new visitor": "/shop/",
                     "baseline": "/shop/baseline.html"}  # fmt: skip
            times: dict[str, list[dict[str, float]]] = {name: [] for name in pages}
            fallbacks: dict[str, int] = {}
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
                visitors = [browser.new_context(base_url=base).new_page()
                            for _ in range(args.visitors)]  # fmt: skip
                fresh = browser.new_context(base_url=base).new_page()
                plain = browser.new_context(base_url=base).new_page()
                # warming: the script in each browser's cache, the server's view built
                for page, path in [*((v, "/shop/") for v in visitors), (fresh, "/shop/"),
                                   (plain, "/shop/baseline.html")] * 2:  # fmt: skip
                    page.goto(path)
                    page.wait_for_selector("[data-surmesure-state]")
                cpu_before = server_cpu(server.pid)
                for i in track(range(args.loads), description="page loads", console=out):
                    turn = visitors[i % args.visitors]
                    for name, page in (("script", turn), ("script, new visitor", fresh),
                                       ("baseline", plain)):  # fmt: skip
                        if page is fresh:
                            page.context.clear_cookies()
                        page.goto(pages[name], wait_until="load")
                        state = page.wait_for_selector("[data-surmesure-state]")
                        assert state is not None
                        if state.get_attribute("data-surmesure-state") != "filled":
                            why = state.get_attribute("data-surmesure-reason") or "?"
                            fallbacks[f"{name}: {why}"] = fallbacks.get(f"{name}: {why}", 0) + 1
                            continue
                        found = page.evaluate(MEASURE)
                        assert found is not None, name
                        times[name].append(found)
                server_seconds = server_cpu(server.pid) - cpu_before
                browser.close()
        finally:
            server.terminate()
            server.wait(timeout=30)
    wall = time.perf_counter() - clock
    table = Table(title=f"web script: {args.loads} loads of each page on loopback (ms)")
    for column in ("page", "filled - load p50", "p95", "filled - navigation p50", "p95",
                   "decide call p50", "p95"):  # fmt: skip
        table.add_column(column, justify="left" if column == "page" else "right")
    figures: dict[str, dict[str, float]] = {}
    for name, found in times.items():
        after_load = [t["filled"] - t["load"] for t in found]
        after_start = [t["filled"] for t in found]
        figures[name] = {
            "load50": statistics.median(after_load),
            "load95": percentile(after_load, 95),
            "nav50": statistics.median(after_start),
            "nav95": percentile(after_start, 95),
            "call50": statistics.median([t["call"] for t in found]),
            "wait50": statistics.median([t["wait"] for t in found]),
            "connect50": statistics.median([t["connect"] for t in found]),
            "call95": percentile([t["call"] for t in found], 95),
        }
        f = figures[name]
        table.add_row(name, *(f"{f[k]:.1f}" for k in ("load50", "load95", "nav50", "nav95")),
                      *(f"{f[k]:.1f}" if f[k] else "" for k in ("call50", "call95")))  # fmt: skip
    out.print(table)
    for name in ("script", "script, new visitor"):
        f = figures[name]
        out.print(
            f"{name}: the decide call p50 {f['call50']:.1f} ms, of which {f['wait50']:.1f} ms "
            f"waiting for the server's first byte and {f['connect50']:.1f} ms before the "
            "request was sent (connection)"
        )
    script, baseline = figures["script"], figures["baseline"]
    worst = max(figures["script"]["load95"], figures["script, new visitor"]["load95"])
    verdict = "within" if worst <= TARGET_MS else "OVER"
    out.print(
        f"filled after the load event, p95: {script['load95']:.1f} ms for a returning visitor, "
        f"{figures['script, new visitor']['load95']:.1f} ms for a new one ({verdict} the "
        f"{TARGET_MS:.0f} ms target); after navigation start the script's page is filled "
        f"{script['nav50'] - baseline['nav50']:+.1f} ms (p50) and "
        f"{script['nav95'] - baseline['nav95']:+.1f} ms (p95) later than the server-rendered "
        f"one, a ratio of {script['nav50'] / baseline['nav50']:.2f} (p50)"
    )
    out.print(
        "loads left with the page's default (and why): "
        + (", ".join(f"{k} {v}" for k, v in sorted(fallbacks.items())) or "none")
    )
    used = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    out.print(
        f"server: {server_seconds * 1000 / args.loads:.2f} ms of processor time per round of "
        f"three loads (two decisions and their view events, three pages served; "
        f"{server_seconds:.2f} s in all); this process and its children: "
        f"{used.ru_utime + used.ru_stime + children.ru_utime + children.ru_stime:.1f} s of "
        f"processor time; wall {wall:.1f} s"
    )


if __name__ == "__main__":
    main()
