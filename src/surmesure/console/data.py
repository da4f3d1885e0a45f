"""Data, for admins: imports and their counts, the quarantine by reason with its replay,
consents and the preference centre's changes, API keys and console users.

Every page calls the services the CLI calls (``surmesure import``, ``quarantine replay``,
``key``, ``user``); every change is written to the audit log as the CLI writes it, with the
console user as actor. A key's secret is shown once, in the answer to the form that created it
(never in a URL, never stored)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs, urlencode

from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, Response

from surmesure.collect import quarantine
from surmesure.collect.known_mappings import known_mapping, known_mappings
from surmesure.collect.records import KINDS
from surmesure.collect.replay import replay
from surmesure.collect.runs import recent_runs
from surmesure.console.cache import cache_of
from surmesure.console.data_words import EN, FR
from surmesure.console.session import form_of
from surmesure.console.session import page as needs
from surmesure.console.web import render, see_other
from surmesure.console.words import WORDS, add
from surmesure.deliver.replays import ROW_KINDS
from surmesure.errors import InvalidInput
from surmesure.protect import audit
from surmesure.protect.consent_report import consent_report
from surmesure.protect.keys import SCOPES, create_key, list_keys, revoke_key
from surmesure.protect.users import LANGUAGES, ROLES, User, create_user, disable_user, list_users
from surmesure.store.engine import Store

add("en", EN)
add("fr", FR)

router = APIRouter(prefix="/console/data", include_in_schema=False)
admin = Depends(needs("admin"))
#: how long the consent counts are kept before they are computed again
CONSENT_SECONDS = 60.0
#: the figures a replay reports, carried to the page that shows them
REPLAY_FIGURES = ("considered", "replayed", "duplicate", "still_open", "not_replayable")
TABS = (
    ("/console/data", "imports"),
    ("/console/data/consents", "consents"),
    ("/console/data/keys", "api_keys"),
    ("/console/data/users", "console_users"),
)


def _store(request: Request) -> Store:
    found: Store = request.app.state.store
    return found


def _page(
    request: Request, template: str, user: User, title: str, *, status: int = 200, **context: Any
) -> HTMLResponse:
    title = WORDS[user.language][title]
    return render(request, template, user=user, title=title, status=status, tabs=TABS, **context)


def _beside(exc: InvalidInput, default: str) -> dict[str, str]:
    """A refusal as the message shown beside its field in a form."""
    return {exc.field or default: f"{exc.message} {exc.hint or ''}".strip()}


def _replayed(request: Request) -> dict[str, int] | None:
    """The figures of the replay just made, from the page's address (``None``: none)."""
    found = {}
    for name in REPLAY_FIGURES:
        value = request.query_params.get(name, "")
        if not value.isdigit():
            return None
        found[name] = int(value)
    return found


@router.get("")
def imports(request: Request, user: User = admin) -> HTMLResponse:
    store = _store(request)
    groups = quarantine.summary(store, status="open", limit=0)["by_reason"]
    mappings = {g["kind"]: known_mappings(store, g["kind"]) for g in groups}
    # messages (kind events) are replayed as a whole, never by reason
    replayable = set(KINDS) | set(ROW_KINDS)
    runs = request.query_params.get("runs", "")
    run_ids = [int(r) for r in runs.split(",") if r.isdigit()][:100]
    return _page(
        request,
        "data.html",
        user,
        "imports",
        runs=recent_runs(store),
        groups=groups,
        mappings=mappings,
        replayable=replayable,
        replayed=_replayed(request),
        replay_runs=recent_runs(store, run_ids=run_ids) if run_ids else [],
        replay_kind=request.query_params.get("kind", ""),
        replay_field=request.query_params.get("field", ""),
    )


async def _with_form(
    request: Request, user: User, act: Callable[[Request, User, dict[str, str]], Response]
) -> Response:
    """``act`` on the form sent, off the event loop (it queries the store)."""
    form = await form_of(request)
    return await run_in_threadpool(act, request, user, form)


@router.post("/quarantine/replay")
async def replay_group(request: Request, user: User = admin) -> Response:
    return await _with_form(request, user, _replay)


def _replay(request: Request, user: User, form: dict[str, str]) -> Response:
    store = _store(request)
    kind, reason, key = form.get("kind", ""), form.get("reason", ""), form.get("mapping", "")
    if not kind or not reason:
        raise InvalidInput(
            "A replay needs the kind and the reason of the records to replay.",
            field="kind" if not kind else "reason",
            hint="use the replay button of a reason's row",
        )
    given = known_mapping(store, kind, key) if key else None
    field = next(
        (
            g["field"]
            for g in quarantine.summary(store, kind=kind, limit=0)["by_reason"]
            if g["reason"] == reason
        ),
        None,
    )
    result = replay(store, kind=kind, reason=reason, given=given)
    audit.record(
        store,
        user.actor,
        "quarantine.replay",
        detail={
            "kind": kind,
            "field": field,
            "mapping": key or None,
            "run_ids": result.run_ids,
            "replayed": result.replayed,
            "still_open": result.still_open,
        },
    )
    cache_of(request).drop("data")
    figures = {name: getattr(result, name) for name in REPLAY_FIGURES}
    query = {
        **figures,
        "runs": ",".join(map(str, result.run_ids)),
        "kind": kind,
        "field": field or "",
    }
    return see_other(f"/console/data?{urlencode(query)}#replayed")


@router.get("/consents")
def consents(request: Request, user: User = admin) -> HTMLResponse:
    store = _store(request)
    report = cache_of(request).get(
        ("data", "consents"), CONSENT_SECONDS, lambda: consent_report(store)
    )
    return _page(request, "data_consents.html", user, "consents", report=report)


def _keys_page(request: Request, user: User, *, status: int = 200, **context: Any) -> HTMLResponse:
    shown = {
        "keys": list_keys(_store(request)),
        "scopes": SCOPES,
        "created": None,
        "errors": {},
        "form": {"name": "", "scopes": []},
    }
    return _page(request, "data_keys.html", user, "api_keys", status=status, **shown | context)


@router.get("/keys")
def keys(request: Request, user: User = admin) -> HTMLResponse:
    return _keys_page(request, user)


@router.post("/keys")
async def new_key(request: Request, user: User = admin) -> Response:
    form = await form_of(request)  # refuses a body too large before it is parsed again
    # one `scope` per box ticked: every value, not the last
    scopes = parse_qs(request.state.console_body.decode("utf-8", "replace")).get("scope", [])
    form["scopes"] = ",".join(scopes)
    return await run_in_threadpool(_create_key, request, user, form)


def _create_key(request: Request, user: User, form: dict[str, str]) -> HTMLResponse:
    store = _store(request)
    name, scopes = form.get("name", ""), [s for s in form["scopes"].split(",") if s]
    try:
        secret, row = create_key(store, name, scopes)
    except InvalidInput as exc:
        kept = {"name": name, "scopes": scopes}
        return _keys_page(request, user, status=400, errors=_beside(exc, "name"), form=kept)
    audit.record(
        store,
        user.actor,
        "key.create",
        detail={"key_id": row["key_id"], "name": name, "scopes": row["scopes"]},
    )
    return _keys_page(request, user, created={**row, "key": secret})


@router.post("/keys/revoke")
async def revoke(request: Request, user: User = admin) -> Response:
    return await _with_form(request, user, _revoke)


def _revoke(request: Request, user: User, form: dict[str, str]) -> Response:
    store = _store(request)
    row = revoke_key(store, form.get("key_id", ""))
    audit.record(
        store, user.actor, "key.revoke", detail={"key_id": row["key_id"], "name": row["name"]}
    )
    return see_other("/console/data/keys")


def _users_page(request: Request, user: User, *, status: int = 200, **context: Any) -> HTMLResponse:
    form = {"email": "", "role": "viewer", "language": user.language}
    shown = {
        "users": list_users(_store(request)),
        "roles": ROLES,
        "languages": LANGUAGES,
        "errors": {},
        "form": form,
    }
    return _page(
        request, "data_users.html", user, "console_users", status=status, **shown | context
    )


@router.get("/users")
def users(request: Request, user: User = admin) -> HTMLResponse:
    return _users_page(request, user)


@router.post("/users")
async def new_user(request: Request, user: User = admin) -> Response:
    return await _with_form(request, user, _create_user)


def _create_user(request: Request, user: User, form: dict[str, str]) -> Response:
    store = _store(request)
    email, role = form.get("email", ""), form.get("role", "")
    language = form.get("language", "en")
    try:
        made = create_user(store, email, form.get("password", ""), role, language=language)
    except InvalidInput as exc:
        kept = {"email": email, "role": role, "language": language}
        return _users_page(request, user, status=400, errors=_beside(exc, "email"), form=kept)
    audit.record(
        store,
        user.actor,
        "user.create",
        detail={"user_id": made.user_id, "role": made.role, "replace": False},
    )
    return see_other("/console/data/users")


@router.post("/users/disable")
async def disable(request: Request, user: User = admin) -> Response:
    return await _with_form(request, user, _disable)


def _disable(request: Request, user: User, form: dict[str, str]) -> Response:
    store = _store(request)
    gone = disable_user(store, form.get("email", ""))
    audit.record(store, user.actor, "user.disable", detail={"user_id": gone.user_id})
    return see_other("/console/data/users")
