"""Journeys in the console: the list with their status and people, a journey drawn as a graph
with the people now on and through each step, its ends and its splits against their control
path; publishing a document (checked as ``journey validate`` checks it, the error shown at its
field), pausing, resuming and archiving. Changing a journey needs the ``decide`` scope."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import sqlalchemy as sa
import yaml
from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, Response

from surmesure.clock import utcnow
from surmesure.console import journey_graph
from surmesure.console.session import form_of, page
from surmesure.console.web import render, see_other
from surmesure.console.words import WORDS, add
from surmesure.documents import read_text
from surmesure.errors import InvalidInput, NotFound
from surmesure.journeys import published, service
from surmesure.journeys.document import parse
from surmesure.protect import audit
from surmesure.protect.users import User
from surmesure.store import schema
from surmesure.store.engine import Store

router = APIRouter(prefix="/console/journeys", include_in_schema=False)
MAX_DOCUMENT = 256 * 1024

add(
    "en",
    {
        "journeys": "Journeys",
        "journey": "Journey",
        "status": "Status",
        "version": "Version",
        "entered": "Entered",
        "now_in": "In it now",
        "goals": "Goals",
        "conversion": "Conversion",
        "steps": "Steps",
        "step": "Step",
        "kind": "Kind",
        "now": "Now",
        "through": "Through",
        "ended": "Ended",
        "reason": "Reason",
        "people_count": "People",
        "splits": "Splits",
        "path": "Path",
        "lift": "Lift",
        "control": "control",
        "publish": "Publish a journey",
        "document": "Document (YAML or JSON)",
        "publish_button": "Check and publish",
        "pause": "Pause",
        "resume": "Resume",
        "archive": "Archive",
        "no_journeys": "No journey yet: publish one below.",
        "published": "Published version",
        "unchanged": "Nothing changed: the version in force is the same.",
        "graph": "The journey's steps, with the people now on and through each",
        "definition": "The document in force",
    },
)
add(
    "fr",
    {
        "journeys": "Parcours",
        "journey": "Parcours",
        "status": "État",
        "version": "Version",
        "entered": "Entrés",
        "now_in": "En cours",
        "goals": "Objectifs",
        "conversion": "Conversion",
        "steps": "Étapes",
        "step": "Étape",
        "kind": "Type",
        "now": "Maintenant",
        "through": "Passés",
        "ended": "Terminés",
        "reason": "Raison",
        "people_count": "Personnes",
        "splits": "Partages",
        "path": "Chemin",
        "lift": "Gain",
        "control": "témoin",
        "publish": "Publier un parcours",
        "document": "Document (YAML ou JSON)",
        "publish_button": "Vérifier et publier",
        "pause": "Mettre en pause",
        "resume": "Reprendre",
        "archive": "Archiver",
        "no_journeys": "Aucun parcours : publiez-en un ci-dessous.",
        "published": "Version publiée",
        "unchanged": "Rien n'a changé : la version en vigueur est la même.",
        "graph": "Les étapes du parcours, avec les personnes présentes et passées à chacune",
        "definition": "Le document en vigueur",
    },
)


def journey_list(store: Store) -> list[dict[str, Any]]:
    j, p = schema.journeys, schema.journey_people
    counts = (
        sa.select(
            p.c.journey,
            sa.func.count().label("entered"),
            sa.func.sum(sa.case((p.c.status == "running", 1), else_=0)).label("running"),
        )
        .group_by(p.c.journey)
        .subquery()
    )
    query = (
        sa.select(j.c.name, j.c.status, j.c.version, counts.c.entered, counts.c.running)
        .outerjoin(counts, counts.c.journey == j.c.name)
        .order_by(j.c.name)
    )
    with store.connect() as conn:
        return [
            {
                "name": r.name,
                "status": r.status,
                "version": int(r.version),
                "entered": int(r.entered or 0),
                "running": int(r.running or 0),
            }
            for r in conn.execute(query)
        ]


def _list_page(
    request: Request,
    user: User,
    *,
    document: str = "",
    error: InvalidInput | None = None,
    status: int = 200,
) -> HTMLResponse:
    return render(
        request,
        "journeys.html",
        user=user,
        status=status,
        title=WORDS[user.language]["journeys"],
        journeys=journey_list(request.app.state.store),
        document=document,
        error=error,
    )


@router.get("")
def journeys_page(request: Request, user: User = Depends(page())) -> HTMLResponse:
    return _list_page(request, user)


@router.post("")
async def publish_journey(request: Request, user: User = Depends(page("decide"))) -> Response:
    text = (await form_of(request)).get("document", "")
    return await run_in_threadpool(_publish, request, user, text)


def _publish(request: Request, user: User, text: str) -> Response:
    store: Store = request.app.state.store
    try:
        if len(text.encode()) > MAX_DOCUMENT:
            raise InvalidInput(
                "The document is over 256 KB.", field="document", hint="publish a shorter document"
            )
        definition = parse(read_text(text))
        done = published.publish(store, definition, utcnow())
    except InvalidInput as exc:
        return _list_page(request, user, document=text, error=exc, status=400)
    audit.record(
        store, user.actor, "journey.publish", detail={"name": done.name, "version": done.version}
    )
    return see_other(f"/console/journeys/{quote(done.name, safe='')}?published={int(done.changed)}")


@router.get("/{name}")
def journey_page(name: str, request: Request, user: User = Depends(page())) -> HTMLResponse:
    store: Store = request.app.state.store
    funnel = service.status(store, name)
    with store.connect() as conn:
        definition = published.version_of(conn, name, int(funnel["version"]))
    counts = {s["step"]: s for s in funnel["steps"]}
    graph = journey_graph.draw(definition.steps, counts, label=WORDS[user.language]["graph"])
    kinds = {s.id: journey_graph.kind_of(s) for s in definition.steps}
    return render(
        request,
        "journey.html",
        user=user,
        title=f"{WORDS[user.language]['journey']} {name}",
        j=funnel,
        kinds=kinds,
        split_keys={
            step: list(dict.fromkeys(k for path in paths for k in path))
            for step, paths in funnel["splits"].items()
        },
        graph=graph,
        document=yaml.safe_dump(definition.document(), sort_keys=False, allow_unicode=True),
        just_published=request.query_params.get("published"),
    )


@router.post("/{name}/{action}")
async def change_journey(
    name: str, action: str, request: Request, user: User = Depends(page("decide"))
) -> Response:
    if action not in service.ACTIONS:
        raise NotFound(
            f"No action {action!r} on a journey.", field="action", hint="pause, resume or archive"
        )
    store: Store = request.app.state.store
    await run_in_threadpool(published.set_status, store, name, service.ACTIONS[action], utcnow())
    await run_in_threadpool(
        audit.record, store, user.actor, f"journey.{action}", detail={"name": name}
    )
    return see_other(f"/console/journeys/{quote(name, safe='')}")
