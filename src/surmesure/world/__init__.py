"""The demo world: a seeded, realistic French retailer's data, as the files a data engineer
would receive, with the mess real data has.

:func:`generate` writes, into one folder, the reference data (stores, products, stock), the
customer files of four sources (CRM, shops, call centre, a data partner) that must be unified,
15 months of orders, e-mail activity, survey answers, consents and web browsing (Segment-spec
JSON Lines), and ``manifest.json``: the seed and size, the rows of each file, the rows that
were spoiled on purpose (by reason and field, which an import must quarantine) and the truth
(how many distinct customers, prospects, orders...), so an import can be checked against it.

The same :class:`Spec` always gives byte-identical files. Every file uses the canonical
column names of its import kind, so ``surmesure import KIND FILE`` reads it with no mapping.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import pyarrow as pa

from surmesure.world import activity, catalog, mess, orders, sources, web
from surmesure.world.base import DEFAULT_END, Calendar, Spec
from surmesure.world.people import make_people
from surmesure.world.write import MANIFEST, CsvFile, read_manifest, write_lines, write_manifest

__all__ = [
    "DEFAULT_END",
    "IMPORTS",
    "MANIFEST",
    "WEB_EVENTS",
    "Spec",
    "generate",
    "manifest_matches",
    "read_manifest",
]

FORMAT = 2
"""Version of the world's layout; a manifest of another version is regenerated."""


class Import(NamedTuple):
    """One file of the world, the import kind that reads it and the source it comes from."""

    file: str
    kind: str
    source: str


IMPORTS: tuple[Import, ...] = (
    Import("stores.csv", "stores", "reference"),
    Import("products.csv", "products", "catalogue"),
    Import("stock.csv", "stock", "catalogue"),
    Import("customers_crm.csv", "customers", "crm"),
    Import("customers_shop.csv", "customers", "shop"),
    Import("customers_call_centre.csv", "customers", "call_centre"),
    Import("customers_partner.csv", "customers", "partner"),
    Import("orders.csv.gz", "orders", "orders"),
    Import("surveys.csv", "surveys", "survey"),
    Import("email.csv", "email", "email"),
    Import("consents.csv", "consents", "crm"),
)
"""Files in dependency order: reference data, customers (the CRM first), then facts."""
WEB_EVENTS = "web_events.jsonl"

Progress = Callable[[str, int, int], None]


def manifest_matches(folder: Path, spec: Spec) -> bool:
    """Whether ``folder`` already holds the complete world of ``spec``."""
    manifest = read_manifest(folder)
    if manifest is None or manifest.get("format") != FORMAT:
        return False
    same = manifest.get("spec") == _spec_dict(spec)
    files = [i.file for i in IMPORTS] + [WEB_EVENTS]
    return same and all((folder / f).is_file() for f in files)


def _spec_dict(spec: Spec) -> dict[str, Any]:
    return {
        "customers": spec.customers,
        "seed": spec.seed,
        "months": spec.months,
        "start": spec.start.isoformat(),
        "end": spec.end.isoformat(),
    }


def _write(
    folder: Path, name: str, table: pa.Table, spec: Spec, defects: str | None = None
) -> dict[str, Any]:
    spoiled = mess.spoil(table, mess.DEFECTS.get(defects or "", []), spec.rng(f"mess-{name}"))
    with CsvFile(folder / name) as out:
        out.write(table, spoiled.before, spoiled.lines)
    return {"rows": out.rows, "malformed": spoiled.counts}


def _write_chunks(
    folder: Path, name: str, chunks: Iterator[pa.Table], spec: Spec, defects: str
) -> dict[str, Any]:
    """Write a large file chunk by chunk, spoiling rows of each chunk."""
    counts = []
    with CsvFile(folder / name) as out:
        for i, chunk in enumerate(chunks):
            spoiled = mess.spoil(chunk, mess.DEFECTS[defects], spec.rng(f"mess-{name}-{i}"))
            out.write(chunk, spoiled.before, spoiled.lines)
            counts.append(spoiled.counts)
    return {"rows": out.rows, "malformed": _sum_counts(counts)}


def generate(spec: Spec, folder: Path, on_progress: Progress | None = None) -> dict[str, Any]:
    """Write the world of ``spec`` into ``folder`` (created if needed) and return its
    manifest. ``on_progress(step, done, total)`` is called as each file is written."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / MANIFEST).unlink(missing_ok=True)
    clock = time.perf_counter()
    total = len(IMPORTS) + 1
    done = 0
    files: dict[str, dict[str, Any]] = {}

    def step(name: str, info: dict[str, Any]) -> None:
        nonlocal done
        files[name] = info
        done += 1
        if on_progress is not None:
            on_progress(name, done, total)

    stores = catalog.make_stores(spec)
    products = catalog.make_catalog(spec)
    calendar = Calendar.of(spec)
    step("stores.csv", _write(folder, "stores.csv", stores.table(), spec))
    step("products.csv", _write(folder, "products.csv", products.table(), spec, "products"))
    stock = catalog.stock_table(spec, stores, products)
    step("stock.csv", _write(folder, "stock.csv", stock, spec, "stock"))

    people = make_people(spec, stores)
    truth: dict[str, Any] = {
        "customers": people.count,
        "households": int(people.household.sum()),
        "customers_with_email": int(people.has_email.sum()),
        "customers_with_phone": int(people.has_phone.sum()),
    }
    shop = sources.shop(spec, people, stores)
    assert shop.holders is not None
    for name, made in (
        ("customers_crm", sources.crm(spec, people, stores)),
        ("customers_shop", shop),
        ("customers_call_centre", sources.call_centre(spec, people)),
        ("customers_partner", sources.partner(spec, people)),
    ):
        info = _write(folder, f"{name}.csv", made.table, spec, name)
        info.update(made.truth)
        step(f"{name}.csv", info)
    apart = people.has_alt_email & shop.holders
    truth["prospects"] = files["customers_partner.csv"]["prospects"]
    truth["known_by_second_email_only"] = int(apart.sum())
    truth["people_after_customers"] = int(people.count + truth["prospects"] + apart.sum())

    book = orders.make_orders(spec, people, stores, products, calendar, shop.holders)
    web_buyers = np.unique(book.customer[book.ident == 3])
    truth["merges_by_orders"] = int(apart[web_buyers].sum())
    truth["people_after_orders"] = truth["people_after_customers"] - truth["merges_by_orders"]
    chunks = orders.order_chunks(book, people, stores, products)
    step("orders.csv.gz", _write_chunks(folder, "orders.csv.gz", chunks, spec, "orders"))
    truth.update(book.truth)

    answers = activity.surveys(spec, people, stores, book)
    step("surveys.csv", _write(folder, "surveys.csv", answers, spec, "surveys"))
    consent = activity.consent_state(spec, people)
    campaigns = activity.EmailCampaigns(spec, people, consent)
    step("email.csv", _write_chunks(folder, "email.csv", campaigns.chunks(), spec, "email"))
    unsubscribed = campaigns.unsubscribed
    table = activity.consents(spec, people, consent, unsubscribed)
    step("consents.csv", _write(folder, "consents.csv", table, spec, "consents"))
    del table
    truth["unsubscribed"] = int((unsubscribed > 0).sum())

    browsing = web.make_web(spec, people, products, calendar)
    lines = write_lines(folder / WEB_EVENTS, web.message_lines(spec, browsing, people, products))
    step(WEB_EVENTS, {"rows": lines, "malformed": []})
    truth["web"] = browsing.truth

    manifest = {
        "format": FORMAT,
        "spec": _spec_dict(spec),
        "stores": len(stores.ids),
        "products": products.size,
        "files": [
            {"file": i.file, "kind": i.kind, "source": i.source, **_file_entry(files[i.file])}
            for i in IMPORTS
        ]
        + [
            {
                "file": WEB_EVENTS,
                "kind": "events",
                "source": "web",
                **_file_entry(files[WEB_EVENTS]),
            }
        ],
        "truth": truth,
        "seconds": round(time.perf_counter() - clock, 2),
    }
    write_manifest(folder, manifest)
    return manifest


def _file_entry(info: dict[str, Any]) -> dict[str, Any]:
    entry = {k: v for k, v in info.items() if k not in ("rows", "malformed")}
    return {
        "rows": info["rows"],
        "malformed_rows": sum(m["rows"] for m in info["malformed"]),
        "malformed": info["malformed"],
        "details": entry,
    }


def _sum_counts(parts: list[list[dict[str, Any]]]) -> list[dict[str, Any]]:
    totals: dict[tuple[str, str | None], int] = {}
    for counts in parts:
        for c in counts:
            key = (c["reason"], c["field"])
            totals[key] = totals.get(key, 0) + c["rows"]
    return [{"reason": r, "field": f, "rows": n} for (r, f), n in totals.items()]
