"""The Segments section: the saved and discovered segments with their members, trend and
overlap; a builder that edits a definition as a form, sizes it and previews its members as it
changes, shows each error beside its field, and saves a new version as ``surmesure segment
save`` does (:func:`surmesure.segment.repository.save`)."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, Response

from surmesure.clock import utcnow
from surmesure.console import charts
from surmesure.console.segment_form import (
    EVENT_OPS,
    KINDS,
    OPS,
    Draft,
    document_of,
    draft_of,
    place_of,
    read_form,
)
from surmesure.console.segment_words import EN, FR
from surmesure.console.session import form_of, page
from surmesure.console.web import fragment, render, see_other
from surmesure.console.words import WORDS, add
from surmesure.domain.segments import METRICS, SegmentDefinition
from surmesure.errors import InvalidInput, NotFound
from surmesure.ops.runs import recorded, refreshed_summary
from surmesure.protect import audit
from surmesure.protect.users import User
from surmesure.segment import discover, membership, overview, repository
from surmesure.segment.definitions import check_references, check_sealed, parse
from surmesure.segment.reports import preview
from surmesure.store.engine import Store
from surmesure.store.span import present

add("en", EN)
add("fr", FR)

router = APIRouter(prefix="/console/segments", include_in_schema=False)
#: how long the list's figures are kept (a save or a refresh from the console drops them)
FIGURES_SECONDS = 300.0
#: segments drawn in the trend chart and in the overlap chart (the largest first)
CHARTED = 6
OVERLAPPED = 8
PREVIEWED = 10
#: the smallest live size shown to a role that may not read people (smaller: "fewer than");
#: larger sizes are shown to it rounded down to a multiple of this
SMALLEST_SHOWN = 10


@dataclass
class Overview:
    """What the list shows, read from the recorded memberships."""

    listed: list[overview.Listed]
    trend: dict[str, list[tuple[Any, int]]]
    overlap_names: list[str]
    overlap: list[list[int]]
    clusters: dict[str, discover.Centroids] = field(default_factory=dict)
    #: the charts drawn, by language: drawing is the costly part of the page
    drawn: dict[str, tuple[list[dict[str, Any]], list[dict[str, Any]]]] = field(
        default_factory=dict
    )
    lock: threading.Lock = field(default_factory=threading.Lock)

    def views(self, language: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        with self.lock:
            if language not in self.drawn:
                words = WORDS[language]
                self.drawn[language] = (_charts(self, words), _cluster_views(self, words))
            return self.drawn[language]


class OverviewCache:
    """The list's charts, computed again when the listing they draw changes (a save, a
    refresh, a discovery, wherever it was made) or after :data:`FIGURES_SECONDS`."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._held: tuple[float, tuple[overview.Listed, ...], Overview] | None = None

    def get(self, store: Store) -> Overview:
        with store.connect() as conn:
            listed = tuple(overview.listing(conn))
        with self._lock:
            held = self._held
            if held is None or held[1] != listed or time.monotonic() - held[0] > FIGURES_SECONDS:
                held = self._held = (time.monotonic(), listed, compute_overview(store, listed))
            return held[2]

    def clear(self) -> None:
        with self._lock:
            self._held = None


def compute_overview(store: Store, listed: tuple[overview.Listed, ...]) -> Overview:
    largest = [i for i in sorted(listed, key=lambda i: -i.members) if i.members]
    shown = sorted(i.name for i in largest[:OVERLAPPED])
    # the trend of saved segments: a discovery's clusters are replaced, not refreshed
    charted = [i.name for i in largest if i.version is not None][:CHARTED]
    with store.connect() as conn:
        trend = overview.trend(conn, charted)
        matrix = overview.overlap(conn, shown) if len(shown) > 1 else []
    groups = overview.discovered_groups(listed)
    clusters = {prefix: discover.centroids(store, names) for prefix, names in groups.items()}
    return Overview(list(listed), trend, shown if matrix else [], matrix, clusters)


def _cache(request: Request) -> OverviewCache:
    state = request.app.state
    if not hasattr(state, "console_segments"):
        state.console_segments = OverviewCache()
    cache: OverviewCache = state.console_segments
    return cache


def _now(store: Store) -> Any:
    return present(store, utcnow())[0]


def _charts(found: Overview, words: dict[str, str]) -> list[dict[str, Any]]:
    figures: list[dict[str, Any]] = []
    drawn = {n: p for n, p in found.trend.items() if p}
    if drawn:
        days = sorted({d for points in drawn.values() for d, _ in points})
        labels = [d.isoformat() for d in days]
        series: dict[str, Sequence[float | None]] = {}
        for name, points in drawn.items():
            at = dict(points)
            value: float | None = None
            held: list[float | None] = []
            for d in days:  # a size holds from the day it changed until the next change
                value = float(at[d]) if d in at else value
                held.append(value)
            series[name] = held
        figures.append({
            "id": "trend", "wide": False, "title": words["seg_trend_title"],
            "svg": charts.line_chart(labels, series, label=words["seg_trend_title"]),
            "head": [words["seg_day"], *drawn],
            "rows": [[label, *("—" if series[n][i] is None else f"{series[n][i]:,.0f}"
                               for n in drawn)] for i, label in enumerate(labels)],
        })  # fmt: skip
    if found.overlap:
        names, matrix = found.overlap_names, found.overlap
        shares = [[c / row[i] if row[i] else 0.0 for c in row] for i, row in enumerate(matrix)]
        text = [[f"{c:,}\n{s:.0%}" for c, s in zip(row, srow, strict=True)]
                for row, srow in zip(matrix, shares, strict=True)]  # fmt: skip
        figures.append({
            "id": "overlap", "wide": len(names) > 3, "title": words["seg_overlap_title"],
            "svg": charts.heatmap(names, names, shares, text=text,
                                  label=words["seg_overlap_title"]),
            "head": ["", *names],
            "rows": [[n, *(f"{c:,}" for c in row)] for n, row in zip(names, matrix, strict=True)],
        })  # fmt: skip
    return figures


def _cluster_views(found: Overview, words: dict[str, str]) -> list[dict[str, Any]]:
    views = []
    sizes = {i.name: i.members for i in found.listed}
    for prefix, c in found.clusters.items():
        names = [n for n in c.z]
        if not names:
            continue
        cells = [[abs(c.z[n][f]) for f in c.features] for n in names]
        text = [[f"{c.z[n][f]:+.1f}" for f in c.features] for n in names]
        title = f"{words['seg_centroids']} ({prefix}_*)"
        views.append({
            "prefix": prefix,
            "features": c.features,
            "rows": [{"name": n, "size": sizes.get(n, 0), "label": c.labels[n],
                      "z": [f"{c.z[n][f]:+.2f}" for f in c.features]} for n in names],
            "svg": charts.heatmap(names, c.features, cells, text=text, label=title),
            "title": title,
        })  # fmt: skip
    return views


@router.get("")
def segment_list(request: Request, user: User = Depends(page())) -> HTMLResponse:
    store: Store = request.app.state.store
    found = _cache(request).get(store)
    words = WORDS[user.language]
    figures, clusters = found.views(user.language)
    return render(
        request,
        "segments.html",
        user=user,
        title=words["segments"],
        listed=found.listed,
        figures=figures,
        clusters=clusters,
        may_decide=user.allows("decide"),
        refreshed=request.query_params.get("refreshed"),
    )


@router.post("/refresh")
async def refresh(request: Request, user: User = Depends(page("decide"))) -> Response:
    """Recompute memberships as ``surmesure segment refresh`` does (one segment, or all)."""
    form = await form_of(request)
    name = form.get("segment", "").strip()
    done = await run_in_threadpool(_refresh, request.app.state.store, name, user)
    _cache(request).clear()
    return see_other(f"/console/segments?refreshed={done}")


def _refresh(store: Store, name: str, user: User) -> int:
    with recorded(store, "segment_refresh", user.actor) as run:
        results = membership.refresh(store, [name] if name else None, _now(store))
        run.summary = refreshed_summary(results)
    audit.record(store, user.actor, "segment.refresh", detail={"segments": len(results)})
    return len(results)


def _builder(
    request: Request,
    user: User,
    draft: Draft,
    *,
    errors: dict[str, tuple[str, str]] | None = None,
    status: int = 200,
    current: str | None = None,
) -> HTMLResponse:
    store: Store = request.app.state.store
    with store.connect() as conn:
        known = sorted(repository.catalog(conn))
        history = repository.history(conn, current) if current else []
    words = WORDS[user.language]
    return render(
        request,
        "segment_builder.html",
        user=user,
        status=status,
        title=current or words["seg_new"],
        draft=draft,
        errors=errors or {},
        kinds=KINDS,
        ops=OPS,
        event_ops=EVENT_OPS,
        metrics=sorted(METRICS),
        known=known,
        current=current,
        history=history,
        may_decide=user.allows("decide"),
        saved=request.query_params.get("saved"),
    )


@router.get("/new")
def new_segment(request: Request, user: User = Depends(page())) -> HTMLResponse:
    return _builder(request, user, Draft())


def _refusal(draft: Draft, exc: InvalidInput) -> dict[str, tuple[str, str]]:
    place = place_of(draft, exc.field)
    message = exc.message
    if exc.field and message.startswith(f"{exc.field}: ") and place != "raw":
        message = message[len(exc.field) + 2 :]  # the field beside it says where
    return {place: (message, exc.hint or "")}


def checked(store: Store, draft: Draft) -> SegmentDefinition:
    """The definition the draft stands for, checked as ``surmesure segment validate`` checks
    a file: its shape, references to saved segments, no sealed trait compared."""
    definition = parse(document_of(draft))
    with store.connect() as conn:
        check_references(definition, repository.catalog(conn))
    check_sealed(definition, store.settings.sealed_traits)
    return definition


@router.post("/edit")
async def edit(request: Request, user: User = Depends(page())) -> HTMLResponse:
    """The builder with a row added or removed (nothing is saved)."""
    form = await form_of(request)
    return await run_in_threadpool(
        _builder, request, user, read_form(form), current=form.get("current") or None
    )


@router.post("/preview")
async def preview_fragment(request: Request, user: User = Depends(page())) -> HTMLResponse:
    """The live size and a preview of members of the form as it stands, and its error beside
    its field (htmx swaps each field's error in place)."""
    draft = read_form(await form_of(request))
    found = await run_in_threadpool(_live, request.app.state.store, draft, user)
    return fragment(request, "segment_preview.html", user=user, draft=draft, **found)


def _live(store: Store, draft: Draft, user: User) -> dict[str, Any]:
    try:
        definition = checked(store, draft)
    except InvalidInput as exc:
        return {"errors": _refusal(draft, exc), "size": None, "members": [], "columns": [],
                "fewer": None, "rounded": None}  # fmt: skip
    now = _now(store)
    with store.connect() as conn:
        known = repository.catalog(conn)
    size = membership.size(store, definition, now, known)
    if not user.allows("read"):  # who may not read people sees no count that could tell
        # whether someone with given traits exists: not one of one (or of nobody), nor two
        # exact sizes whose difference is one (A, then A and not the traits). Rounding makes
        # that difference take a search for a size at a boundary, not one subtraction.
        if size < SMALLEST_SHOWN:
            return {"errors": {}, "size": 0, "fewer": SMALLEST_SHOWN, "members": [],
                    "columns": [], "as_of": now}  # fmt: skip
        return {"errors": {}, "size": size - size % SMALLEST_SHOWN, "members": [],
                "columns": [], "as_of": now, "fewer": None, "rounded": SMALLEST_SHOWN}  # fmt: skip
    members: list[dict[str, Any]] = []
    if user.allows("read") and size:
        members = preview(store, definition, known, now, PREVIEWED)
        audit.record(
            store,
            user.actor,
            "segment.preview",
            detail={"segment": definition.name, "people": [r["person_id"] for r in members]},
        )
    columns = [c for c in (members[0] if members else {}) if not c.startswith("reliability.")]
    return {"errors": {}, "size": size, "members": members, "columns": columns, "as_of": now,
            "fewer": None, "rounded": None}  # fmt: skip


@router.post("/save")
async def save(request: Request, user: User = Depends(page("decide"))) -> Response:
    """Save the form as a new version of its segment (unchanged: no new version)."""
    form = await form_of(request)
    draft = read_form(form)
    store: Store = request.app.state.store
    try:
        saved = await run_in_threadpool(_save, store, draft, user)
    except InvalidInput as exc:
        return await run_in_threadpool(
            _builder, request, user, draft, errors=_refusal(draft, exc), status=400,
            current=form.get("current") or None,
        )  # fmt: skip
    _cache(request).clear()
    return see_other(f"/console/segments/{saved.name}?saved={saved.version}")


def _save(store: Store, draft: Draft, user: User) -> repository.Saved:
    saved = repository.save(store, checked(store, draft), utcnow())
    audit.record(
        store,
        user.actor,
        "segment.save",
        detail={"segment": saved.name, "version": saved.version, "changed": saved.changed},
    )
    return saved  # fmt: skip


@router.get("/{name}")
def segment_page(name: str, request: Request, user: User = Depends(page())) -> HTMLResponse:
    store: Store = request.app.state.store
    with store.connect() as conn:
        definition = repository.catalog(conn).get(name)
    if definition is None:
        raise NotFound(
            f"There is no saved definition of segment {name!r}.",
            hint="discovered segments have members but no definition; open one from the list",
            field="name",
        )
    return _builder(request, user, draft_of(definition), current=name)
