"""Signing in and out, the home page (the shop's key figures and their trend, what is
running), and the console's own assets."""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from importlib.resources import files
from typing import Any

import sqlalchemy as sa
from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, Response

from surmesure.console import charts
from surmesure.console.session import (
    COOKIE,
    LOGIN_COOKIE,
    check_csrf,
    cookie_options,
    csrf_for,
    current_user,
    form_of,
    new_sign_in_token,
    page,
    session_token,
    sign,
    unsign,
)
from surmesure.console.web import render, see_other
from surmesure.console.words import WORDS, language_of
from surmesure.derive.kpi import Kpis, kpis
from surmesure.errors import InvalidInput, NotFound
from surmesure.protect import audit
from surmesure.protect.users import (
    SignInLimits,
    User,
    address_of,
    authenticate,
    end_session,
    open_session,
)
from surmesure.store import schema
from surmesure.store.engine import Store

log = logging.getLogger("surmesure.console")
router = APIRouter(prefix="/console", include_in_schema=False)
ASSETS = {"console.css": "text/css", "htmx.min.js": "text/javascript"}
#: how long the home page's figures are kept before they are computed again
FIGURES_SECONDS = 300.0


def _next_of(value: str | None) -> str:
    """Where to go after signing in: a console path only (never another site)."""
    if value and value.startswith("/console/") and not value.startswith("/console//"):
        return value if "\\" not in value else "/console/"
    return "/console/"


def _sign_in_page(
    request: Request,
    *,
    failed: str = "",
    email: str = "",
    next_path: str = "/console/",
    status: int = 200,
) -> Response:
    token = new_sign_in_token()
    response = render(
        request,
        "login.html",
        user=None,
        status=status,
        title=WORDS[language_of(request)]["sign_in"],
        failed=failed,
        email=email,
        next=next_path,
        form_csrf=csrf_for(request, token),
    )
    response.set_cookie(
        LOGIN_COOKIE, sign(request, token, "sign-in"), max_age=3600, **cookie_options(request)
    )
    return response


@router.get("/login")
async def sign_in_form(request: Request, next: str | None = None) -> Response:
    if await current_user(request) is not None:
        return see_other(_next_of(next))
    request.app.state.console_figures.warm(request.app.state.store)  # ready once signed in
    return _sign_in_page(request, next_path=_next_of(next))


@router.post("/login")
async def sign_in(request: Request) -> Response:
    form = await form_of(request)
    token = unsign(request, request.cookies.get(LOGIN_COOKIE), "sign-in")
    if token is None:
        raise InvalidInput(
            "The sign-in form has expired.",
            field="csrf",
            hint="open the sign-in page again (cookies must be allowed for this site)",
        )
    await check_csrf(request, csrf_for(request, token))
    typed = form.get("email", "")
    email = address_of(typed)  # what authenticate looks up, so that the limits count it
    client = request.client.host if request.client else "?"
    limits: SignInLimits = request.app.state.console_limits
    limits.begin(email, client)
    store: Store = request.app.state.store
    user = None
    try:
        user = await run_in_threadpool(authenticate, store, typed, form.get("password", ""))
    finally:
        limits.end(email, client, failed=user is None)
    next_path = _next_of(form.get("next"))
    if user is None:
        words = WORDS[language_of(request)]
        return _sign_in_page(
            request, failed=words["bad_sign_in"], email=email, next_path=next_path, status=401
        )
    hours = request.app.state.settings.console_session_hours
    session = await run_in_threadpool(open_session, store, user, hours=hours)
    await run_in_threadpool(audit.record, store, user.actor, "console.sign_in")
    response = see_other(next_path)
    response.set_cookie(
        COOKIE, sign(request, session), max_age=int(hours * 3600), **cookie_options(request)
    )
    response.delete_cookie(LOGIN_COOKIE, path="/console")
    return response


@router.post("/logout")
async def sign_out(request: Request, user: User = Depends(page())) -> Response:
    token = session_token(request)
    if token is not None:
        await run_in_threadpool(end_session, request.app.state.store, token)
    response = see_other("/console/login")
    response.delete_cookie(COOKIE, path="/console")
    return response


@router.get("/static/{name}")
async def asset(name: str) -> Response:
    kind = ASSETS.get(name)
    if kind is None:
        raise NotFound(f"No console asset {name!r}.", field="name")
    body = (files("surmesure.console") / "static" / name).read_bytes()
    return Response(
        body,
        media_type=kind,
        headers={"Cache-Control": "public, max-age=3600", "X-Content-Type-Options": "nosniff"},
    )


@dataclass(frozen=True, slots=True)
class Figures:
    """What the home page shows, computed at most every :data:`FIGURES_SECONDS`."""

    kpis: Kpis | None
    customers: int
    active: int
    months: list[str]
    revenue: list[float]
    buyers: list[int]


class FigureCache:
    """The home page's figures, computed once and then again in the background when they are
    older than :data:`FIGURES_SECONDS` (the page shows the figures held meanwhile), so only
    the very first page waits for them; the sign-in page starts that first computation."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._held: tuple[float, Figures] | None = None
        self._computing: threading.Thread | None = None

    def get(self, store: Store) -> Figures:
        with self._lock:
            held, computing = self._held, self._computing
            if held is not None and time.monotonic() - held[0] > FIGURES_SECONDS:
                self._start(store)
        if held is not None:
            return held[1]
        if computing is not None:
            computing.join()
        with self._lock:
            if self._held is None:
                self._held = (time.monotonic(), figures(store))
            return self._held[1]

    def warm(self, store: Store) -> None:
        """Compute the figures in the background unless they are held or being computed."""
        with self._lock:
            if self._held is None:
                self._start(store)

    def settle(self, timeout: float = 60.0) -> None:
        """Wait for a computation under way (a server stopping: its store is about to close)."""
        with self._lock:
            computing = self._computing
        if computing is not None:
            computing.join(timeout)

    def _start(self, store: Store) -> None:
        if self._computing is not None and self._computing.is_alive():
            return
        self._computing = threading.Thread(target=self._compute, args=(store,), daemon=True)
        self._computing.start()

    def _compute(self, store: Store) -> None:
        try:
            found = figures(store)
        except Exception:  # the store busy or closing: the next page asks again
            log.warning("the home page's figures could not be computed; kept the held ones")
            return
        with self._lock:
            self._held = (time.monotonic(), found)


def figures(store: Store) -> Figures:
    """The key figures at the default date (the latest data), and 12 months of revenue and
    buyers up to it."""
    people, orders = schema.people, schema.orders
    with store.connect() as conn:
        customers = conn.execute(
            sa.select(sa.func.count()).where(people.c.merged_into.is_(None))
        ).scalar_one()
        has_orders = conn.execute(sa.select(orders.c.order_id).limit(1)).first() is not None
    if not has_orders:
        return Figures(None, int(customers), 0, [], [], [])
    k = kpis(store)
    end = datetime.combine(k.as_of, datetime.min.time())
    start = (end - timedelta(days=365)).replace(day=1)
    month = sa.func.date_trunc("month", orders.c.ordered_at).label("month")
    query = (
        sa.select(
            month,
            sa.func.sum(orders.c.total_amount),
            sa.func.count(sa.distinct(orders.c.person_id)),
        )
        .where(orders.c.ordered_at >= start, orders.c.ordered_at < end, ~orders.c.is_return)
        .group_by(month)
        .order_by(month)
    )
    with store.connect() as conn:
        rows = conn.execute(query).all()
        active = conn.execute(
            sa.select(sa.func.count(sa.distinct(orders.c.person_id))).where(
                orders.c.ordered_at >= end - timedelta(days=365),
                orders.c.ordered_at < end,
                ~orders.c.is_return,  # a return alone is no sign of an active customer
            )
        ).scalar_one()
    return Figures(
        kpis=k,
        customers=int(customers),
        active=int(active),
        months=[r[0].strftime("%Y-%m") for r in rows],
        revenue=[float(r[1] or 0) for r in rows],
        buyers=[int(r[2]) for r in rows],
    )


def running(store: Store) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Campaigns with messages still to leave, and active journeys."""
    m, j = schema.messages, schema.journeys
    with store.connect() as conn:
        campaigns = conn.execute(
            sa.select(m.c.campaign, sa.func.count())
            .where(
                m.c.status.in_(("planned", "sending")),
                # a journey's sends are in the outbox too, under names of no campaign
                m.c.campaign.in_(sa.select(schema.campaigns.c.name)),
            )
            .group_by(m.c.campaign)
            .order_by(m.c.campaign)
        ).all()
        journeys = conn.execute(
            sa.select(j.c.name, j.c.status).where(j.c.status == "active").order_by(j.c.name)
        ).all()
    return (
        [{"name": c[0], "status": f"{c[1]:,} to send"} for c in campaigns],
        [{"name": r.name, "status": r.status} for r in journeys],
    )


@router.get("/")
def home(request: Request, user: User = Depends(page())) -> HTMLResponse:
    store: Store = request.app.state.store
    found = request.app.state.console_figures.get(store)
    words = WORDS[user.language]
    chart_list = []
    if found.kpis is not None and found.months:
        cur = found.kpis.currency or ""
        chart_list = [
            {
                "title": f"{words['monthly_revenue']}{f' ({cur})' if cur else ''}",
                "svg": charts.line_chart(
                    found.months,
                    {words["monthly_revenue"]: found.revenue},
                    label=words["monthly_revenue"],
                ),
                "rows": [
                    (mo, f"{v:,.0f}") for mo, v in zip(found.months, found.revenue, strict=False)
                ],
            },
            {
                "title": words["monthly_buyers"],
                "svg": charts.bar_chart(
                    found.months,
                    {words["monthly_buyers"]: found.buyers},
                    label=words["monthly_buyers"],
                ),
                "rows": [(mo, f"{v:,}") for mo, v in zip(found.months, found.buyers, strict=False)],
            },
        ]
        nps = found.kpis.nps_by_month[-12:]
        if nps:
            chart_list.append(
                {
                    "title": words["nps_by_month"],
                    "svg": charts.line_chart(
                        [g.group for g in nps],
                        {words["nps"]: [g.nps for g in nps]},
                        label=words["nps_by_month"],
                    ),
                    "rows": [(g.group, f"{g.nps:.1f} ({g.answers})") for g in nps],
                }
            )
    campaigns, journeys = running(store)
    return render(
        request,
        "home.html",
        user=user,
        title=words["home"],
        k=found.kpis,
        customers=found.customers,
        active=found.active,
        charts=chart_list,
        running_campaigns=campaigns,
        running_journeys=journeys,
    )


@router.get("")
async def root() -> Response:
    return see_other("/console/")
