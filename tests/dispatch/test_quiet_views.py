"""A page's views and clicks, and a site's pages and screens, cost the serving cache no
re-read: a ``track``, ``page`` or ``screen`` event changes nothing it holds of its person but
who they are, and the segments a round moves people in or out of tell those people
themselves."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from surmesure.clock import utcnow
from surmesure.collect.events import write_events
from surmesure.collect.segment import Accepted, Refusal, validate_messages
from surmesure.decide.content import CompiledTemplate
from surmesure.decide.library import parse_template
from surmesure.decide.service import DecideRequest, decide
from surmesure.decide.serving import Serving
from surmesure.decide.serving_cache import ServingCache
from surmesure.dispatch import dispatcher
from surmesure.domain.segments import SegmentDefinition
from surmesure.protect import blind
from surmesure.segment import repository
from surmesure.store import Store
from surmesure.unify.reader import identifier_keys
from surmesure.web.events import messages
from surmesure.web.identity import Visitor

#: a segment whose condition names the web's view event
VIEWERS = SegmentDefinition.model_validate(
    {"name": "banner_viewers", "where": {"event": {"type": "track", "name": "Promotion Viewed"}}}
)
BANNER = CompiledTemplate(
    parse_template(
        """
name: viewers_banner
placement: viewers_banner
channel: web
variants:
  - name: seen_it
    segment: banner_viewers
    body: "Encore vous"
  - name: default
    body: "Bienvenue"
""",
        "viewers_banner.yaml",
    )
)


def _identify(store: Store, customer: str) -> None:
    raw = [{"type": "identify", "userId": customer, "messageId": f"crm-{customer}",
            "traits": {"first_name": "Camille"}}]  # fmt: skip
    _store(store, validate_messages(raw, region="FR", prefix=""), "crm")
    dispatcher.drain(store)


def _view(store: Store, who: Visitor) -> None:
    """A view of a placement, stored as ``POST /v1/web/events`` stores it."""
    item = {"type": "view", "placement": "viewers_banner", "decision_id": uuid.uuid4().hex}
    _store(store, messages(who, [item], "FR"), "web")


def _store(store: Store, found: tuple[list[Accepted], list[Refusal]], source: str) -> None:
    accepted, refused = found
    assert not refused
    with store.begin() as conn:
        write_events(store, conn, accepted, source=source, received_at=utcnow())


def _customer(customer: str) -> Visitor:
    return Visitor(anonymous_id=uuid.uuid4().hex, cookie="", issued=False, customer_id=customer)


@pytest.fixture
def serving(store: Store) -> Iterator[Serving]:
    """A server's cache, read whole at start, its safety net out of the way."""
    running = Serving(store, refresh_seconds=3_600, flush_ms=20, cache_people=100)
    running.start()
    assert running.warm_done.wait(10)
    yield running
    running.stop()


def _held(cache: ServingCache, store: Store, customer: str) -> int | None:
    keys = identifier_keys(None, customer, "FR", blind.index_key(store))
    return cache.person_id(None, keys)


def test_a_view_of_a_placement_reads_nobody_again(store: Store, serving: Serving) -> None:
    _identify(store, "C-1")
    cache = serving.view()
    person = _held(cache, store, "C-1")
    assert person is not None and cache.reads.get(person) is not None
    loads = cache.loads
    _view(store, _customer("C-1"))
    effects = dispatcher.drain(store)
    assert effects["people_changed"] == 0
    assert cache.loads == loads  # nobody read again
    assert _held(cache, store, "C-1") == person and cache.loads == loads


def test_a_known_persons_pages_and_screens_read_nobody_again(
    store: Store, serving: Serving
) -> None:
    """A page or a screen changes nothing the cache holds of its person, as a view does: most
    of what a site sends costs it no re-read."""
    _identify(store, "C-3")
    cache = serving.view()
    person = _held(cache, store, "C-3")
    assert person is not None and cache.reads.get(person) is not None
    loads = cache.loads
    raw = [
        {"type": "page", "userId": "C-3", "messageId": "page-1", "name": "Accueil"},
        {"type": "screen", "userId": "C-3", "messageId": "screen-1", "name": "Panier"},
    ]
    _store(store, validate_messages(raw, region="FR", prefix=""), "crm")
    assert dispatcher.drain(store)["people_changed"] == 0
    assert cache.loads == loads and _held(cache, store, "C-3") == person


def test_a_new_visitors_first_view_still_names_them(store: Store, serving: Serving) -> None:
    cache = serving.view()
    who = Visitor(anonymous_id=uuid.uuid4().hex, cookie="", issued=False)
    keys = identifier_keys(who.anonymous_id, None, "FR", blind.index_key(store))
    assert cache.person_id(None, keys) is None  # remembered as nobody
    _view(store, who)  # their first event makes them someone
    assert dispatcher.drain(store)["people_changed"] == 1
    assert cache.person_id(None, keys) is not None


def test_a_view_a_segment_names_reaches_the_next_decision(store: Store, serving: Serving) -> None:
    repository.save(store, VIEWERS, utcnow())
    _identify(store, "C-2")
    asked = DecideRequest(placement="viewers_banner", customer_id="C-2")

    def variant() -> str:
        out = decide(store, asked, BANNER, use_default_recommender=False, serving=serving)
        return str(out["content"]["variant"])

    assert variant() == "default"
    person = _held(serving.view(), store, "C-2")
    assert person is not None and serving.view().reads.get(person) is not None  # held
    _view(store, _customer("C-2"))
    effects = dispatcher.drain(store)
    assert effects["segment_membership"] == 1  # in the segment now
    assert variant() == "seen_it"
