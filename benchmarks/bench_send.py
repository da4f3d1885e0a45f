"""An e-mail campaign end to end for ``--people`` people (default 20,000) in DuckDB: plan,
record, render and hand over to a local SMTP server in its own process (aiosmtpd by default,
or ``--server sink``, see ``bench_campaign_send.py``), with a plain ``smtplib`` loop's rate
beside it in the same run.

The content is a library template of three variants (chosen by segment membership), written
in MJML (compiled to HTML, plus a text part read from it), with personal fields (a trait, the
loyalty points and the CLV tier from derived metrics) and four recommended products per person
(name, price in euros, a link sent through click tracking), computed from the people's orders.
``--profile`` prints where the render step (claim, read, recommend, render; not the hand-over)
spends its time, for a batch of 2,000 people (``SORT=tottime TOP=40`` change the listing);
``--profile-send`` where the sending process spends the whole send's time (with ``--workers
N``: what is left to it beside the workers).

    python benchmarks/bench_send.py [--people N] [--parallel 4] [--server sink] [--json]
        [--profile | --profile-send] [--workers N [--workers-only]] [--baseline REF [--rounds 2]]

``--baseline REF`` measures this checkout's code and ``REF``'s (a temporary ``git worktree``,
removed afterwards) each in a child process running this script, alternating for ``--rounds``
rounds so the machine's load falls on both, and prints the processor time a message (the
workers' included, the SMTP server's left out) of each, with its ratio to the baseline's.

``--workers N`` sends the campaign twice in the same run, on fresh stores: by the sending
process alone, then with N worker processes recommending, rendering and handing over
(``campaign send --workers N``), and prints both; ``--workers-only`` sends it once, with the
workers (each run still prints a plain ``smtplib`` loop's rate to the same server beside it).

Target (issue 13): at least 1,000 messages/s end to end for 100,000 people.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import os
import pstats
import subprocess
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pyarrow as pa
from rich.console import Console
from rich.table import Table

from bench_campaign_send import SERVERS, T0, TARGET, _fill, run
from gitref import HEAD_SRC, checkout, describe, env_for
from surmesure.config import get_settings
from surmesure.decide.recommend.model import clear_cache
from surmesure.deliver import documents
from surmesure.store import Store, open_store, schema

PRODUCTS = 400
CATEGORIES = 12
PRODUCTS_MJML = (
    "{% if products %}{% for p in products %}"
    "<mj-text><a href='https://shop.example/p/{{ p.product_code }}'>{{ p.name }}</a>"
    " : {{ p.price|money(currency) }}</mj-text>{% endfor %}"
    "{% else %}<mj-text>Toute la collection en boutique.</mj-text>{% endif %}"
)


def _body(headline: str) -> str:
    return (
        "<mjml><mj-body><mj-section><mj-column>"
        f"<mj-text font-size='20px'>{headline}</mj-text>"
        "<mj-text>Les nouveautés de {{ person.city }} arrivent. Vous avez {{ person.points }} "
        "points{% if person.tier %} (niveau {{ person.tier }}){% endif %}.</mj-text>"
        f"{PRODUCTS_MJML}"
        "<mj-button href='https://shop.example/spring'>Voir</mj-button>"
        "</mj-column></mj-section></mj-body></mjml>"
    )


TEMPLATE: dict[str, Any] = {
    "name": "bench_mail",
    "placement": "email_bench",
    "channel": "email",
    "format": "html",
    "currency": "EUR",
    "fields": {
        "city": {"trait": "city", "fallback": "votre ville"},
        "points": {"metric": "points", "fallback": 0},
        "tier": {"metric": "clv_tier", "fallback": ""},
    },
    "variants": [
        {
            "name": "loyal",
            "segment": "loyal",
            "subject": "Merci, {{ person.city }}",
            "body": _body("Merci pour votre fidélité"),
        },
        {
            "name": "new",
            "segment": "new",
            "subject": "Bienvenue à {{ person.city }}",
            "body": _body("Bienvenue"),
        },
        {"name": "default", "subject": "Le printemps", "body": _body("Le printemps")},
    ],
}
DOCUMENT: dict[str, Any] = {
    "name": "bench",
    "audience": "everyone",
    "channels": {"email": {"template": "bench_mail"}},
}


def _shop(store: Store, n: int) -> None:
    """A catalogue, one or two orders of two products for each person, their derived
    metrics, and a third of them in each of two segments."""
    rng = np.random.default_rng(7)
    codes = [f"P{i:04d}" for i in range(PRODUCTS)]
    at = pa.array([T0 - timedelta(days=30)] * PRODUCTS, pa.timestamp("us"))
    ids = np.arange(1, n + 1)
    orders = np.concatenate([ids, ids[rng.random(n) < 0.5]])
    first = rng.zipf(1.3, orders.size) % PRODUCTS
    second = (first + rng.integers(1, 6, orders.size)) % PRODUCTS
    order_ids = [f"o{i}" for i in range(orders.size)]
    when = pa.array(
        [T0 - timedelta(days=int(d)) for d in rng.integers(5, 300, orders.size)],
        pa.timestamp("us"),
    )
    day = T0.date() - timedelta(days=1)
    with store.begin() as conn:
        store.bulk_insert(
            conn,
            schema.products,
            pa.table({"product_code": codes, "name": [f"Produit {i}" for i in range(PRODUCTS)],
                      "category": [f"cat{i % CATEGORIES}" for i in range(PRODUCTS)],
                      "price": [9.9 + i % 50 for i in range(PRODUCTS)],
                      "currency": ["EUR"] * PRODUCTS, "updated_at": at}),
        )  # fmt: skip
        store.bulk_insert(
            conn,
            schema.orders,
            pa.table({"order_id": order_ids, "person_id": orders, "node_id": orders,
                      "ordered_at": when, "is_return": [False] * orders.size,
                      "total_amount": [40.0] * orders.size, "source": ["shop"] * orders.size}),
        )  # fmt: skip
        lines = pa.table(
            {"order_id": order_ids * 2, "line_no": [1] * orders.size + [2] * orders.size,
             "product_code": [codes[i] for i in np.concatenate([first, second])],
             "quantity": [1] * (2 * orders.size), "unit_price": [20.0] * (2 * orders.size),
             "amount": [20.0] * (2 * orders.size), "is_fee": [False] * (2 * orders.size)}
        )  # fmt: skip
        store.bulk_insert(conn, schema.order_lines, lines)
        store.bulk_insert(
            conn,
            schema.derived_metrics,
            pa.table({"person_id": ids, "computed_on": [day] * n,
                      "computed_at": pa.array([T0 - timedelta(days=1)] * n, pa.timestamp("us")),
                      "as_of": [day] * n, "monetary": rng.gamma(2.0, 80.0, n),
                      "expected_value": rng.gamma(1.5, 300.0, n), "horizon_days": [365] * n,
                      "discount_rate": [0.1] * n, "window_days": [365] * n}),
        )  # fmt: skip
        segment = np.where(ids % 3 == 0, "loyal", np.where(ids % 3 == 1, "new", ""))
        kept = segment != ""
        store.bulk_insert(
            conn,
            schema.segment_members,
            pa.table({"segment": segment[kept], "person_id": ids[kept],
                      "entered_at": pa.array([T0] * int(kept.sum()), pa.timestamp("us"))}),
        )  # fmt: skip


def _profile_render(store: Store, console: Console) -> None:
    """Where claiming, reading, recommending and rendering a batch of 2,000 spends its time."""
    from surmesure.deliver import outbox, plan, sender
    from surmesure.deliver.content import templates_of
    from surmesure.deliver.handover import compose

    with store.begin() as conn:
        definition, version = documents.get(conn, "bench")
        plan.record(store, conn, plan.plan(store, conn, definition, version, T0), T0)
    templates = templates_of(definition, store.settings)
    with store.begin() as conn:
        rows = outbox.claim(store, conn, "bench", T0, 2_000, ["email"])
    profiler = cProfile.Profile()
    start = time.perf_counter()
    with store.connect() as conn:
        profiler.enable()
        drafts, _ = sender.gather(
            store, conn, definition, templates, rows, T0, settings=get_settings()
        )
        ready, _ = compose(templates, drafts, T0)
        profiler.disable()
    elapsed = time.perf_counter() - start
    console.print(f"render step: {len(ready):,} messages in {elapsed:.2f} s "
                  f"({len(ready) / elapsed:,.0f}/s)")  # fmt: skip
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).sort_stats(os.environ.get("SORT", "cumulative")).print_stats(
        int(os.environ.get("TOP", "25"))
    )
    console.print(out.getvalue(), markup=False, highlight=False)


def _setup(store: Store, people: int, folder: Path) -> None:
    """The shop, and the template library holding the campaign's template."""
    _shop(store, people)
    templates = folder / "templates"
    templates.mkdir()
    (templates / "bench_mail.yaml").write_bytes(orjson.dumps(TEMPLATE))  # JSON is YAML
    os.environ["SURMESURE_TEMPLATES_DIR"] = str(templates)
    get_settings.cache_clear()
    clear_cache()


def profile(people: int, console: Console) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        store = open_store(f"duckdb:///{Path(tmp) / 'bench.duckdb'}")
        try:
            _fill(store, people)
            _setup(store, people, Path(tmp))
            documents.save(store, documents.parse(DOCUMENT), T0)
            _profile_render(store, console)
        finally:
            store.dispose()


def _profiled(profiler: cProfile.Profile) -> Any:
    """``service.send`` with ``profiler`` on while it runs (in the sending process)."""
    import bench_campaign_send

    send = bench_campaign_send.service.send

    def wrapped(*args: Any, **kwargs: Any) -> Any:
        profiler.enable()
        try:
            return send(*args, **kwargs)
        finally:
            profiler.disable()

    return wrapped


def _child(src: Path, args: argparse.Namespace) -> list[dict[str, Any]]:
    """This script's runs (``--json``) in a child process with the code of ``src``."""
    argv = ["--people", str(args.people), "--parallel", str(args.parallel)]
    argv += ["--server", args.server, "--workers", str(args.workers), "--json"]
    argv += ["--workers-only"] if args.workers_only else []
    done = subprocess.run(
        [sys.executable, __file__, *argv], env=env_for(src), capture_output=True, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(done.stderr.decode()[-2000:])
    got = orjson.loads(done.stdout)
    outs: list[dict[str, Any]] = got if isinstance(got, list) else [got]
    if not outs[0]["package"].startswith(str(src)):
        raise RuntimeError(f"the child imported {outs[0]['package']}, not the code of {src}")
    return outs


def compare(args: argparse.Namespace, console: Console) -> None:
    """This checkout's code beside ``--baseline``'s, round by round (see the module)."""
    head = f"this checkout ({describe('HEAD')}+)"
    best: dict[str, list[dict[str, Any]]] = {}
    with checkout(args.baseline) as src:
        sides = {describe(args.baseline): src, head: HEAD_SRC}
        order = list(sides)
        for turn in range(args.rounds):
            for name in order if turn % 2 == 0 else order[::-1]:
                outs = _child(sides[name], args)
                console.print(f"  {name}: {outs[-1]['all_cpu_ms_per_message']} ms a message")
                for i, out in enumerate(outs):
                    kept = best.setdefault(name, [*outs])
                    if out["all_cpu_ms_per_message"] < kept[i]["all_cpu_ms_per_message"]:
                        kept[i] = out
    if args.json:
        print(orjson.dumps(best, option=orjson.OPT_INDENT_2).decode())
        return
    base = best[order[0]]
    table = Table("code", "workers", "messages/s", "plain smtplib loop/s",
                  "CPU ms/message, sending process", "CPU ms/message, all", "ratio")  # fmt: skip
    for name, outs in best.items():
        for out, was in zip(outs, base, strict=True):
            cpu = out["all_cpu_ms_per_message"]
            table.add_row(
                name, str(out["workers"]), f"{out['messages_per_s']:,}",
                f"{out['smtplib_loop_per_s']:,}", f"{out['cpu_ms_per_message']:.3f}",
                f"{cpu:.3f}", f"{cpu / was['all_cpu_ms_per_message']:.3f}",
            )  # fmt: skip
    Console().print(table)
    Console().print(
        f"{args.people:,} people, {args.server}, best of {args.rounds} round(s) a side; "
        f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--people", type=int, default=20_000)
    parser.add_argument("--parallel", type=int, default=4)
    parser.add_argument("--server", choices=sorted(SERVERS), default="aiosmtpd")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--profile-send", action="store_true")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--workers-only", action="store_true")
    parser.add_argument("--baseline", metavar="REF", help="a commit to compare with")
    parser.add_argument("--rounds", type=int, default=1)
    args = parser.parse_args()
    console = Console(stderr=True)
    if args.baseline is not None:
        compare(args, console)
        return
    if args.profile:
        profile(min(args.people, 5_000), console)
        return
    runs = [1] if args.workers <= 1 else [args.workers] if args.workers_only else [1, args.workers]
    profiler = cProfile.Profile(time.process_time)  # processor time: the machine is shared
    if args.profile_send:
        import bench_campaign_send

        bench_campaign_send.service.send = _profiled(profiler)  # type: ignore[attr-defined]
        runs = runs[-1:]
    outs = []
    for workers in runs:
        out = run(
            args.people, args.parallel, console, args.server,
            document=DOCUMENT, setup=_setup, track=True, workers=workers,
        )  # fmt: skip
        outs.append(out)
    if args.profile_send:
        listing = io.StringIO()
        order = os.environ.get("SORT", "cumulative")
        pstats.Stats(profiler, stream=listing).sort_stats(order).print_stats(
            int(os.environ.get("TOP", "40"))
        )
        console.print(listing.getvalue(), markup=False, highlight=False)
    if args.json:
        import surmesure

        for out in outs:
            out["package"] = surmesure.__file__  # which code ran (``--baseline``)
        print(orjson.dumps(outs if len(outs) > 1 else outs[0], option=orjson.OPT_INDENT_2).decode())
        return
    for out in outs:
        by = "the sending process" if out["workers"] == 1 else f"{out['workers']} workers"
        console.print(
            f"e-mail campaign ({out['server']}, 3 variants, MJML, 4 products, {by}): "
            f"{out['sent']:,} messages ({out['outcomes']}) in {out['seconds']} s, "
            f"{out['messages_per_s']:,}/s "
            f"(server received {out['received']:,}); plain smtplib loop: "
            f"{out['smtplib_loop_per_s']:,}/s; target {TARGET:,.0f}/s: "
            f"{'met' if out['met'] else 'NOT met'}; processor a message: "
            f"{out['cpu_ms_per_message']} ms in the sending process, "
            f"{out['all_cpu_ms_per_message']} ms with the workers; load average "
            f"{out['load_average']} on {out['cpus']} CPUs (shared machine)"
        )


if __name__ == "__main__":
    main()
