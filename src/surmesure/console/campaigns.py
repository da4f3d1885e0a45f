"""Campaigns: the list with each outbox counted by status; a new campaign from a document
(validated at the field by the same checks as ``campaign validate``, then saved); launching,
pausing and resuming it (``campaign send``, ``pause``, ``resume``); its status page; its
results against its control group, per channel and per segment, as charts with intervals
(``campaign results``). Any role reads; changing needs the ``decide`` scope."""

from __future__ import annotations

import math
from collections.abc import Sequence
from email.parser import BytesParser
from email.policy import HTTP
from typing import Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, Response

from surmesure.clock import utcnow
from surmesure.console import charts
from surmesure.console.campaign_words import EXAMPLE
from surmesure.console.session import bounded_body, form_of, page
from surmesure.console.web import fragment, render, see_other
from surmesure.console.words import WORDS
from surmesure.deliver import documents, outbox, results, service
from surmesure.deliver.launcher import Launch, Launcher
from surmesure.errors import InvalidInput, NotFound, SurmesureError
from surmesure.protect import audit
from surmesure.protect.users import User
from surmesure.segment.repository import catalog
from surmesure.store.engine import Store

router = APIRouter(prefix="/console/campaigns", include_in_schema=False)


def _store(request: Request) -> Store:
    store: Store = request.app.state.store
    return store


@router.get("")
def campaigns(request: Request, user: User = Depends(page())) -> HTMLResponse:
    words = WORDS[user.language]
    return render(
        request,
        "campaigns.html",
        user=user,
        title=words["campaigns"],
        campaigns=service.overview(_store(request)),
        may_decide=user.allows("decide"),
    )


def _new_page(
    request: Request, user: User, text: str, *, error: SurmesureError | None = None,
    valid: str = "",
) -> HTMLResponse:  # fmt: skip
    words = WORDS[user.language]
    return render(
        request,
        "campaign_new.html",
        user=user,
        status=200 if error is None else error.http_status,
        title=words["new_campaign"],
        text=text,
        error=error,
        valid=valid,
    )


@router.get("/new")
def new_campaign(request: Request, user: User = Depends(page("decide"))) -> HTMLResponse:
    return _new_page(request, user, EXAMPLE)


@router.post("/new")
async def post_campaign(request: Request, user: User = Depends(page("decide"))) -> Response:
    form = await form_of(request)
    text = form.get("document", "")
    store = _store(request)
    try:
        if not text.strip():
            raise InvalidInput(
                "The document is empty.", field="(document)", hint="write or upload a campaign"
            )
        definition = await run_in_threadpool(service.validate_text, store, text)
        if form.get("action") != "save":
            return _new_page(request, user, text, valid=definition.name)
        saved = await run_in_threadpool(documents.save, store, definition, utcnow())
    except SurmesureError as exc:
        return _new_page(request, user, text, error=exc)
    await run_in_threadpool(
        audit.record,
        store,
        user.actor,
        "console.campaign_save",
        detail={"campaign": saved.name, "version": saved.version},
    )
    return see_other(f"/console/campaigns/{saved.name}")


def uploaded(content_type: str, body: bytes, field: str = "file") -> str:
    """The text of the file ``field`` of a ``multipart/form-data`` body (UTF-8);
    :class:`InvalidInput` naming ``file`` when there is none or it is not text."""
    message = BytesParser(policy=HTTP).parsebytes(
        b"Content-Type: " + content_type.encode("latin-1") + b"\r\n\r\n" + body
    )
    if message.is_multipart():
        for part in message.iter_parts():
            if part.get_param("name", header="content-disposition") == field:
                data = part.get_payload(decode=True)
                try:
                    return data.decode("utf-8") if isinstance(data, bytes) else ""
                except UnicodeDecodeError:
                    break
    raise InvalidInput(
        "The file is not a UTF-8 text file.", field="file", hint="upload a .yaml or .json file"
    )


@router.post("/upload")
async def upload(request: Request, user: User = Depends(page("decide"))) -> HTMLResponse:
    """The document area holding the uploaded file's text (htmx swaps it in; the CSRF token
    comes as its header)."""
    body = await bounded_body(request)
    text = uploaded(request.headers.get("content-type", ""), body)
    return fragment(request, "campaign_document.html", user=user, text=text, error=None)


@router.get("/{name}")
def campaign(name: str, request: Request, user: User = Depends(page())) -> HTMLResponse:
    store = _store(request)
    out = service.status(store, name)
    with store.connect() as conn:
        definition, _ = documents.get(conn, name)
    return render(
        request,
        "campaign.html",
        user=user,
        title=name,
        s=out,
        d=definition,
        document=definition.document(),
        paused=out["by_status"].get(outbox.PAUSED, 0) > 0,
        may_decide=user.allows("decide"),
        launch=_launch_view(request.app.state.launcher.last(definition.name)),
    )


def _launch_view(launch: Launch | None) -> dict[str, Any] | None:
    """What this process launched last of the campaign, for its page."""
    if launch is None:
        return None
    counts: dict[str, int] = ((launch.report or {}).get("sent")) or {}
    sent = counts.get("sent", 0)
    return {"running": launch.running, "error": launch.error, "started_at": launch.started_at,
            "sent": sent, "not_sent": sum(counts.values()) - sent}  # fmt: skip


@router.post("/{name}/launch")
def launch(name: str, request: Request, user: User = Depends(page("decide"))) -> Response:
    store = _store(request)
    known = service.known(store, name)
    audit.record(store, user.actor, "console.campaign_launch", detail={"campaign": known})
    launcher: Launcher = request.app.state.launcher
    launcher.launch(known, user.actor, utcnow())  # planned here; the messages leave from its thread
    return see_other(f"/console/campaigns/{known}")


@router.post("/{name}/{act}")
def pause_or_resume(
    name: str, act: str, request: Request, user: User = Depends(page("decide"))
) -> Response:
    """``pause``: hold back what has not left; ``resume``: let it leave again."""
    acts = {"pause": outbox.pause, "resume": outbox.resume}
    if act not in acts:
        raise NotFound(f"No campaign action {act!r}.", field="action", hint="pause or resume")
    store = _store(request)
    changed = acts[act](store, service.known(store, name), utcnow())
    audit.record(
        store,
        user.actor,
        f"console.campaign_{act}",
        detail={"campaign": name, "messages": changed},
    )
    return see_other(f"/console/campaigns/{name}")


def _bounds(lift: dict[str, Any], scale: float) -> tuple[float, float, float]:
    est, low, high = (lift.get(k) for k in ("estimate", "ci_lower", "ci_upper"))
    if est is None:
        return 0.0, 0.0, 0.0
    return (
        est * scale,
        (est if low is None else low) * scale,
        (est if high is None else high) * scale,
    )


def lift_figure(
    title: str, rows: list[tuple[str, dict[str, Any]]], words: dict[str, str]
) -> dict[str, Any]:
    """Bars of the lift in conversion (treated minus baseline, in points) per row, with their
    95% intervals, and the values beside them."""
    label = words["lift_points"]
    bounds = [_bounds(row["conversion"], 100.0) for _, row in rows]
    svg = charts.bar_chart(
        [name for name, _ in rows],
        {label: [b[0] for b in bounds]},
        label=title,
        errors={label: [(b[1], b[2]) for b in bounds]},
    )
    return {
        "title": title,
        "svg": svg,
        "columns": ["", label, words["interval"]],
        "rows": [
            (name, f"{b[0]:.2f}", f"[{b[1]:.2f} ; {b[2]:.2f}]")
            for (name, _), b in zip(rows, bounds, strict=True)
        ],
    }


def _rate(value: float | None) -> float:
    return 0.0 if value is None or math.isnan(value) else value * 100


@router.get("/{name}/results")
def campaign_results(
    name: str,
    request: Request,
    by: list[str] = Query(default=[]),
    user: User = Depends(page()),
) -> HTMLResponse:
    store = _store(request)
    words = WORDS[user.language]
    with store.connect() as conn:
        segments = sorted(catalog(conn))
    chosen = [b for b in by if b in segments][:8]
    out = results.measure(store, name, chosen)
    groups = out["groups"]
    channels = [c["channel"] for c in out["comparisons"]]
    baseline = out["baseline"]
    treated = {g["channel"]: g for g in groups if g["arm"] == "message"}
    control = {g["channel"]: g for g in groups if g["arm"] == baseline}

    def rates(arm: dict[str, dict[str, Any]]) -> list[float]:
        return [_rate((arm.get(c) or {}).get("conversion_rate")) for c in channels]

    labels = [words["all"] if c == "all" else c for c in channels]
    arms: dict[str, Sequence[float]] = {
        words["treated"]: rates(treated),
        words[baseline]: rates(control),
    }
    figures = [
        {
            "title": words["conversion_by_arm"],
            "svg": charts.bar_chart(labels, arms, label=words["conversion_by_arm"]),
            "columns": ["", *arms],
            "rows": [
                (label, *(f"{v[i]:.2f}" for v in arms.values())) for i, label in enumerate(labels)
            ],
        },
        lift_figure(
            words["lift_by_channel"], [(c["channel"], c) for c in out["comparisons"]], words
        ),
    ]
    if "breakdown" in out:
        rows = [(str(b["segment"]), b) for b in out["breakdown"]]
        figures.append(lift_figure(words["lift_by_segment"], rows, words))
    films = film_stages(out["video"], words) if out.get("video") else None
    if films is not None:
        figures.append({
            "title": words["films_funnel"],
            "svg": charts.bar_chart(
                [s["label"] for s in films], {words["people_n"]: [s["people"] for s in films]},
                label=words["films_funnel"],
            ),
            "columns": ["", words["people_n"]],
            "rows": [(s["label"], f"{s['people']:,}") for s in films],
        })  # fmt: skip
    return render(
        request,
        "campaign_results.html",
        user=user,
        title=f"{words['results']} {name}",
        name=name,
        r=out,
        figures=figures,
        segments=segments,
        chosen=chosen,
        films=films,
    )


def film_stages(video: dict[str, Any], words: dict[str, str]) -> list[dict[str, Any]]:
    """The people at each stage of a video campaign's films, in order: the page opened, the
    film started, each quarter played, played to the end, a button followed."""
    quarters = [
        {"stage": f"quarter_{q}", "label": words["film_quarter"].format(q=q), "people": n}
        for q, n in video["quarters"].items()
    ]
    return [
        {"stage": "pages_opened", "label": words["film_pages_opened"],
         "people": video["pages_opened"]},
        {"stage": "views", "label": words["film_views"], "people": video["views"]},
        *quarters,
        {"stage": "completed", "label": words["film_completed"], "people": video["completed"]},
        {"stage": "clicked", "label": words["film_clicked"], "people": video["clicked"]},
    ]  # fmt: skip
