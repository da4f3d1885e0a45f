"""One decision reads a person in one statement: same audience as the per-part readers, and a
bounded number of SQL statements per decision (so the round trips cannot creep back)."""

from __future__ import annotations

from datetime import date

from decide_world import DAY, NOW, add_person, set_consent

from surmesure.config import get_settings
from surmesure.decide.audience import audience_from, load_audience
from surmesure.decide.content import metric_names
from surmesure.decide.library import EXAMPLES, Library
from surmesure.decide.recommend.model import clear_cache
from surmesure.decide.service import DecideRequest, decide
from surmesure.protect import blind
from surmesure.store import Store, schema
from surmesure.unify.reader import identifier_keys, read_person

MAX_QUERIES = 4


def _world(store: Store) -> None:
    traits = {
        "first_name": ("Anna", "crm", 0.9, NOW - 2 * DAY),
        "city": ("Lyon", "web", 0.6, NOW - 40 * DAY),
    }
    add_person(store, 1, traits, identifiers={"customer_id": "C1"}, segments=["loyal_customers"])
    add_person(store, 2, traits, identifiers={"customer_id": "C2"})
    add_person(store, 3, traits, identifiers={"customer_id": "C3"}, segments=["loyal_customers"])
    set_consent(store, 3, True, NOW - 9 * DAY)
    set_consent(store, 3, False, NOW - 3 * DAY)  # the latest refuses personalization
    with store.begin() as conn:
        for pid, day, frequency in ((2, date(2026, 3, 1), 4), (2, date(2026, 3, 8), 1)):
            conn.execute(
                schema.derived_metrics.insert().values(
                    person_id=pid,
                    computed_on=day,
                    computed_at=NOW - (NOW.date() - day).days * DAY,
                    as_of=day,
                    frequency=frequency,
                    rfm_segment="New",
                    horizon_days=365,
                    discount_rate=0.1,
                    window_days=365,
                )
            )


def test_one_statement_reads_the_same_audience(store: Store) -> None:
    _world(store)
    compiled = Library(EXAMPLES).named("welcome_email")
    rules = [v.when for v in compiled.definition.variants]
    half_life = get_settings().trait_half_life_days
    with store.connect() as conn:
        for customer in ("C1", "C2", "C3", "nobody"):
            read = read_person(
                conn,
                person_id=None,
                keys=identifier_keys(None, customer, "FR", blind.index_key(store)),
                now=NOW,
                metrics=metric_names(rules),
                content_ids=[],
            )
            fast = audience_from(read, NOW, half_life, compiled.needs, settings=store.settings)
            slow = load_audience(conn, read.person_id, NOW, half_life, needs=compiled.needs)
            # the one statement reads only the metrics the rules test
            assert (fast.person_id, fast.opted_out) == (slow.person_id, slow.opted_out)
            assert (fast.traits, fast.segments) == (slow.traits, slow.segments)
            if slow.snapshot is None:
                assert fast.snapshot is None
            else:
                assert fast.snapshot is not None
                assert fast.snapshot.traits == slow.snapshot.traits
                wanted = {k: v for k, v in slow.snapshot.metrics.items() if k == "frequency"}
                assert fast.snapshot.metrics == wanted
        assert read.person_id is None
    assert wanted == {"frequency": 1}  # the latest derived row of person 2
    assert metric_names(rules) == {"frequency"}


def test_a_decision_sends_few_statements_and_stays_personal(store: Store) -> None:
    _world(store)
    clear_cache()
    library = Library(EXAMPLES)
    email = library.named("welcome_email")
    banner = library.named("home_banner")
    decide(store, DecideRequest(placement="email_weekly", customer_id="C2"), email)  # model
    cases = [
        (DecideRequest(placement="email_weekly", customer_id="C1"), email, "loyal", 1),
        (DecideRequest(placement="email_weekly", customer_id="C2"), email, "newcomer", 2),
        (DecideRequest(placement="email_weekly", customer_id="C3"), email, "default", 3),
        (DecideRequest(placement="home_banner", person_id=1), banner, None, 1),
        (DecideRequest(placement="home_banner", anonymous_id="never"), banner, "default", None),
    ]
    for request, compiled, variant, person in cases:
        with store.statements() as sent:
            result = decide(store, request, compiled)
        assert 1 <= len(sent) <= MAX_QUERIES, sent
        assert result["person_id"] == person
        if variant is not None:  # (the banner's rule depends on the age of the trait)
            assert result["content"]["variant"] == variant
        assert result["known"] is (person is not None)
        if person is not None:  # the exposure and the decision are written
            assert any(s.lstrip().upper().startswith("INSERT INTO EXPOSURES") for s in sent)
    clear_cache()
