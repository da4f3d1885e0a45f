"""The Segments section in Chromium: a marketer builds a segment in the form, sees its live
size (the service's count) and an error beside the field that is wrong, saves it and finds it
in the list; the list's overlap, trend and discovered clusters agree with the recorded
memberships; a viewer may look but not save."""

from __future__ import annotations

import re
import uuid
from typing import Any

import pytest
import sqlalchemy as sa
from console_helpers import email_of, session_client, shot, sign_in
from playwright.sync_api import Browser, Page, expect

from surmesure.clock import utcnow
from surmesure.console.segment_form import Draft, Row, document_of, draft_of, place_of
from surmesure.domain.segments import SegmentDefinition
from surmesure.errors import InvalidInput
from surmesure.segment import discover, membership, repository
from surmesure.segment.definitions import parse
from surmesure.store import Store, schema
from surmesure.store.span import present
from surmesure.world import segments as shipped

World = tuple[str, Store]


def _unique(stem: str) -> str:
    return f"{stem}_{uuid.uuid4().hex[:8]}"


def _present(store: Store) -> Any:
    return present(store, utcnow())[0]


def _audited(store: Store, actor_email: str, action: str) -> list[dict[str, Any]]:
    log = schema.audit_log
    with store.connect() as conn:
        rows = conn.execute(sa.select(log).where(log.c.action == action)).mappings().all()
    return [dict(r) for r in rows if actor_email in str(r["actor"])]


def test_a_form_gives_back_the_definition_it_shows() -> None:
    """Rows for what rows can say, the raw condition for the rest: the same document."""
    from importlib.resources import files

    import yaml

    text = (files(shipped) / "lyon_loyal.yaml").read_text(encoding="utf-8")
    definition = parse(yaml.safe_load(text))
    draft = draft_of(definition)
    # a point on the map and an amount spent need the raw condition; the refused consent is a row
    assert [r.kind for r in draft.rows] == ["metric", "consent"]
    assert (draft.rows[1].negate, draft.rows[1].op, draft.rows[1].value) == (True, "ne", "email")
    assert "near" in draft.raw and "min_amount" in draft.raw
    again = parse(document_of(draft))
    # the rows come first, then the raw condition: the same conditions, joined the same way
    assert sorted(map(str, again.document()["where"]["all"])) == sorted(
        map(str, definition.document()["where"]["all"])
    )
    counted = SegmentDefinition.model_validate(
        {"name": "x", "where": {"any": [
            {"event": {"name": "Product Viewed", "min_count": 2, "within_days": 30}},
            {"not": {"event": {"name": "Order Completed", "max_count": 0, "min_count": 0}}},
            {"trait": {"name": "city", "op": "in", "value": ["Lyon", "Paris"]}},
            {"segment": "y"},
            {"event": {"type": None, "name": "Email Opened", "min_count": 0, "max_count": 3}},
        ]}}
    )  # fmt: skip
    back = draft_of(counted)
    assert back.raw == "" and back.join == "any" and len(back.rows) == 5
    assert back.rows[1].negate and (back.rows[1].op, back.rows[1].value) == ("eq", "0")
    assert (back.rows[4].op, back.rows[4].value) == ("le", "3")
    assert parse(document_of(back)).document() == counted.document()


def test_purchases_consents_and_stores_are_rows_too() -> None:
    definition = SegmentDefinition.model_validate(
        {"name": "x", "where": {"all": [
            {"purchase": {"category": "shoes", "min_count": 2, "within_days": 180}},
            {"purchase": {"product": "85123A"}},
            {"not": {"purchase": {"within_days": 365}}},
            {"consent": {"purpose": "marketing", "channel": "sms", "granted": False}},
            {"consent": {"purpose": "personalization", "channel": "any"}},
            {"near": {"store": "S01", "radius_km": 12.5}},
        ]}}
    )  # fmt: skip
    draft = draft_of(definition)
    assert draft.raw == "" and [r.kind for r in draft.rows] == [
        "purchase", "purchase", "purchase", "consent", "consent", "near"
    ]  # fmt: skip
    assert (draft.rows[0].name, draft.rows[0].op, draft.rows[0].value, draft.rows[0].days) == (
        "shoes", "ge", "2", "180"
    )  # fmt: skip
    assert draft.rows[1].name == "product:85123A" and draft.rows[2].negate
    assert (draft.rows[3].op, draft.rows[4].op) == ("ne", "eq")
    assert (draft.rows[5].name, draft.rows[5].op, draft.rows[5].value) == ("S01", "le", "12.5")
    assert parse(document_of(draft)).document() == definition.document()
    # a row says only what its kind can: each refusal beside the field that is wrong
    for row, field in (
        (Row("purchase", "shoes", "le", "2"), "c0.value"),
        (Row("purchase", "shoes", "ge", "two"), "c0.value"),
        (Row("consent", "marketing", "gt", "email"), "c0.op"),
        (Row("near", "S01", "ge", "5"), "c0.value"),
        (Row("consent", "marketing", "eq", "email", days="30"), "c0.days"),
    ):
        with pytest.raises(InvalidInput) as caught:
            parse(document_of(Draft("y", rows=[row])))
        assert place_of(Draft("y", rows=[row]), caught.value.field) == field, row


def test_an_error_is_placed_beside_its_field() -> None:
    draft = Draft("ok", rows=[Row("metric", "rfm_segment", "eq", "Champions"),
                              Row("metric", "monetary", "ge", "lots")])  # fmt: skip
    with pytest.raises(Exception) as caught:
        parse(document_of(draft))
    assert place_of(draft, caught.value.field) == "c1.value"  # type: ignore[attr-defined]
    draft.rows[1] = Row("trait", "city", "eq", "Lyon", days="30")
    with pytest.raises(Exception) as caught:
        document_of(draft)
    assert place_of(draft, caught.value.field) == "c1.days"  # type: ignore[attr-defined]
    draft.rows[1] = Row("metric", "no_such_metric", "eq", "1")
    with pytest.raises(Exception) as caught:
        parse(document_of(draft))
    assert place_of(draft, caught.value.field) == "c1.name"  # type: ignore[attr-defined]
    draft.rows, draft.raw = [Row("metric", "frequency", "ge", "2")], "purchase: {min_count: 0}"
    with pytest.raises(Exception) as caught:
        parse(document_of(draft))
    assert place_of(draft, caught.value.field) == "raw"  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("row", "place"),
    [
        (Row("purchase", "gifts", "ge", "1", days="9" * 30), "c0.days"),  # past any date
        (Row("purchase", "gifts", "ge", "9" * 30), "c0.value"),  # past any SQL integer
        (Row("event", "Order Completed", "le", "9" * 30), "c0.value"),
        (Row("event", "Order Completed", "ge", "1", days="99999999"), "c0.days"),
        (Row("purchase", "product:", "ge", "1"), "c0.name"),  # a product of no code
        (Row("purchase", "product:  ", "ge", "1"), "c0.name"),
    ],
)
def test_hostile_purchase_and_event_rows_are_refused_at_their_field(
    duckdb_store: Store, row: Row, place: str
) -> None:
    """Numbers past what a date or an SQL integer holds, and ``product:`` with nothing after
    it, are refused beside the field, never sized (a crash, or a product that is no product)."""
    draft = Draft("hostile", rows=[row])
    with pytest.raises(InvalidInput) as caught:
        parse(document_of(draft))
    assert place_of(draft, caught.value.field) == place
    draft.rows = [Row("purchase", "gifts", "ge", "2147483647", days="36525")]  # the largest
    definition = parse(document_of(draft))
    with duckdb_store.connect() as conn:
        known = repository.catalog(conn)
    assert membership.size(duckdb_store, definition, utcnow(), known) == 0


def _fill_row(page: Page, i: int, kind: str, name: str, op: str, value: str) -> None:
    page.locator(f"#c{i}-kind").select_option(kind)
    page.locator(f"#c{i}-name").fill(name)
    page.locator(f"#c{i}-op").select_option(op)
    page.locator(f"#c{i}-value").fill(value)


def test_marketer_builds_sizes_and_saves_a_segment(console_world: World, chromium: Browser) -> None:
    base, store = console_world
    name = _unique("champions_rich")
    page = sign_in(chromium, base, "marketer")
    page.goto("/console/segments/new")
    expect(page.get_by_role("heading", name="Segment builder")).to_be_visible()
    page.get_by_label("Name", exact=True).fill(name)
    _fill_row(page, 0, "metric", "rfm_segment", "eq", "Champions")
    page.get_by_role("button", name="Add a condition").click()  # the form comes back, kept
    expect(page.locator("#c1-kind")).to_be_visible()
    assert page.locator("#f-name").input_value() == name
    assert page.locator("#c0-value").input_value() == "Champions"
    _fill_row(page, 1, "metric", "monetary", "ge", "200")

    definition = SegmentDefinition.model_validate(
        {"name": name, "where": {"all": [
            {"metric": {"name": "rfm_segment", "op": "eq", "value": "Champions"}},
            {"metric": {"name": "monetary", "op": "ge", "value": 200}},
        ]}}
    )  # fmt: skip
    expected = membership.size(store, definition, _present(store))
    assert 0 < expected < 1500  # the threshold keeps some champions, not all people
    live = page.locator("#live-size")
    expect(live).to_have_attribute("data-size", str(expected), timeout=15_000)
    expect(page.locator("table.preview tbody tr")).to_have_count(min(expected, 10))
    shot(page, "segment-builder")

    page.locator("#c1-value").fill("lots")  # a wrong value: its error beside it
    error = page.locator("#err-c1-value")
    expect(error).to_contain_text("number", timeout=15_000)
    expect(page.locator("#err-c0-value")).to_be_empty()
    expect(page.get_by_role("alert")).to_contain_text("Fix the field")
    shot(page, "segment-builder-error")
    page.locator("#c1-value").fill("200")
    expect(live).to_have_attribute("data-size", str(expected), timeout=15_000)
    expect(error).to_be_empty()

    page.get_by_role("button", name="Save a new version").click()
    page.wait_for_url(re.compile(rf"/console/segments/{name}\?saved=1"))
    expect(page.get_by_role("status")).to_contain_text("version 1")
    with store.connect() as conn:
        assert repository.get(conn, name).document() == definition.document()
    assert _audited(store, email_of("marketer"), "segment.save")
    assert _audited(store, email_of("marketer"), "segment.preview")  # members were shown

    page.goto("/console/segments")
    expect(page.locator(f'tr[data-segment="{name}"]')).to_contain_text("not refreshed yet")
    page.context.close()


def test_a_saved_segment_opens_in_the_form_and_refreshes(
    console_world: World, chromium: Browser
) -> None:
    base, store = console_world
    name = _unique("frequent")
    document = {"name": name, "description": "Two orders or more", "where": {"all": [
        {"metric": {"name": "frequency", "op": "ge", "value": 2}},
        {"purchase": {"within_days": 365, "min_amount": 20}},  # an amount: the raw condition
    ]}}  # fmt: skip
    repository.save(store, parse(document), utcnow())
    page = sign_in(chromium, base, "marketer")
    page.goto(f"/console/segments/{name}")
    assert page.locator("#c0-name").input_value() == "frequency"
    assert "min_amount" in page.locator("#f-raw").input_value()
    expected = membership.size(store, parse(document), _present(store))
    expect(page.locator("#live-size")).to_have_attribute("data-size", str(expected), timeout=15_000)
    page.goto("/console/segments")
    page.get_by_role("button", name=f"Refresh {name}").click()
    page.wait_for_url(re.compile(r"/console/segments\?refreshed=1"))
    row = page.locator(f'tr[data-segment="{name}"]')
    expect(row.locator("[data-members]")).to_have_text(f"{expected:,}")
    runs = schema.job_runs  # recorded as `surmesure segment refresh` records its runs
    with store.connect() as conn:
        ran = conn.execute(
            sa.select(runs.c.ok).where(
                runs.c.job == "segment_refresh", runs.c.actor == f"console:{email_of('marketer')}"
            )
        ).all()
    assert ran and all(r.ok for r in ran)
    page.context.close()


def test_list_shows_overlap_trend_and_discovered_clusters(
    console_world: World, chromium: Browser
) -> None:
    base, store = console_world
    first, second = _unique("loyal_any"), _unique("active_buyers")
    now = _present(store)
    for name, where in (
        (first, {"metric": {"name": "rfm_segment", "op": "in", "value": ["Loyal", "Champions"]}}),
        (second, {"metric": {"name": "frequency", "op": "ge", "value": 3}}),
    ):
        repository.save(store, parse({"name": name, "where": where}), utcnow())
    membership.refresh(store, [first, second], now)
    prefix = _unique("grp")
    found = discover.discover(store, k=3, prefix=prefix)
    discover.save(store, found, utcnow(), prefix)

    page = sign_in(chromium, base, "marketer")
    page.goto("/console/segments")
    page.get_by_role("button", name=f"Refresh {first}").click()  # drops the list's cache
    page.wait_for_url(re.compile(r"refreshed=1"))
    m = schema.segment_members
    with store.connect() as conn:
        both = conn.execute(
            sa.select(sa.func.count()).select_from(m.alias("a").join(
                m.alias("b"), sa.text("a.person_id = b.person_id")))
            .where(sa.text("a.segment = :x AND b.segment = :y")), {"x": first, "y": second}
        ).scalar_one()  # fmt: skip
        sizes = dict(
            conn.execute(sa.select(m.c.segment, sa.func.count()).group_by(m.c.segment)).all()
        )
    overlap = page.locator("#figure-overlap")
    expect(overlap.locator("svg[role=img]")).to_have_count(1)
    overlap.locator("summary").click()
    table = overlap.locator("table")
    head = [t.strip() for t in table.locator("thead th").all_inner_texts()][1:]
    row = table.locator("tbody tr", has=page.locator(f'th:text-is("{first}")'))
    values = [int(v.replace(",", "")) for v in row.locator("td").all_inner_texts()]
    assert values[head.index(second)] == both
    assert values[head.index(first)] == sizes[first]
    expect(page.locator("#figure-trend svg[role=img]")).to_have_count(1)
    for cluster in found.clusters:
        listed = page.locator(f'tr[data-cluster="{cluster.name}"]')
        expect(listed).to_contain_text(f"{cluster.size:,}")
        expect(listed).to_contain_text(cluster.label)
    shot(page, "segments-list")
    page.context.close()


def test_centroids_from_memberships_are_the_discovery_centroids(console_world: World) -> None:
    _, store = console_world
    prefix = _unique("cen")
    found = discover.discover(store, k=3, prefix=prefix)
    discover.save(store, found, utcnow(), prefix)
    again = discover.centroids(store, [c.name for c in found.clusters])
    assert again.features == found.features
    for cluster in found.clusters:
        assert again.sizes[cluster.name] == cluster.size
        for feature, z in cluster.z.items():
            assert again.z[cluster.name][feature] == pytest.approx(z, abs=1e-5)
        assert again.labels[cluster.name] == cluster.label


def test_viewer_sees_the_list_but_may_not_save(console_world: World, chromium: Browser) -> None:
    base, store = console_world
    page = sign_in(chromium, base, "viewer")
    page.goto("/console/segments")
    expect(page.get_by_role("heading", name="Segments", exact=True)).to_be_visible()
    expect(page.locator('tr[data-segment="demo_campaign"]')).to_be_visible()
    expect(page.get_by_role("button", name=re.compile("Refresh"))).to_have_count(0)
    page.goto("/console/segments/new")
    expect(page.get_by_role("button", name="Save a new version")).to_have_count(0)
    page.context.close()

    name = _unique("viewer_try")
    form = {"name": name, "join": "all", "c0.kind": "metric", "c0.name": "frequency",
            "c0.op": "ge", "c0.value": "1"}  # fmt: skip
    with session_client(base, "viewer") as (client, csrf):
        refused = client.post("/console/segments/save", data={**form, "csrf": csrf})
        assert refused.status_code == 403
        sized = client.post("/console/segments/preview", data={**form, "csrf": csrf})
        assert sized.status_code == 200 and 'id="live-size"' in sized.text
        assert 'table class="preview"' not in sized.text  # the size, not who is in it
    with session_client(base, "marketer") as (client, _):
        assert client.post("/console/segments/save", data=form).status_code == 403  # no CSRF
    with store.connect() as conn:
        assert name not in repository.catalog(conn)


def test_a_viewer_sizing_a_narrow_definition_sees_only_that_it_is_small(
    console_world: World,
) -> None:
    """A live count of one (or of nobody) would tell a viewer whether someone with given traits
    exists: below ten, a role that may not read people sees "fewer than 10"; an analyst, who
    may read them, sees the count."""
    base, store = console_world
    metrics = schema.derived_metrics
    with store.connect() as conn:
        most = conn.execute(sa.select(sa.func.max(metrics.c.frequency))).scalar_one()
    name = _unique("narrow")
    form = {"name": name, "join": "all", "c0.kind": "metric", "c0.name": "frequency",
            "c0.op": "ge", "c0.value": str(most)}  # fmt: skip
    definition = SegmentDefinition.model_validate(
        {"name": name, "where": {"metric": {"name": "frequency", "op": "ge", "value": most}}}
    )
    with store.connect() as conn:
        known = repository.catalog(conn)
    expected = membership.size(store, definition, _present(store), known)
    assert 0 < expected < 10
    with session_client(base, "viewer") as (client, csrf):
        sized = client.post("/console/segments/preview", data={**form, "csrf": csrf})
        assert sized.status_code == 200
        assert 'data-size="&lt;10"' in sized.text and "fewer than 10" in sized.text
        assert f'data-size="{expected}"' not in sized.text
    with session_client(base, "analyst") as (client, csrf):
        sized = client.post("/console/segments/preview", data={**form, "csrf": csrf})
        assert sized.status_code == 200 and f'data-size="{expected}"' in sized.text


def test_a_viewer_cannot_subtract_two_sizes_to_count_a_small_group(
    console_world: World,
) -> None:
    """The narrow group (fewer than ten) is "fewer than 10" to a viewer; everyone bought once,
    then everyone bought once but not the narrow group, are both ten or more: their exact
    sizes would differ by the narrow group's count. A viewer sees both rounded down to tens."""
    base, store = console_world
    metrics = schema.derived_metrics
    with store.connect() as conn:
        most = conn.execute(sa.select(sa.func.max(metrics.c.frequency))).scalar_one()
    broad = {"metric": {"name": "frequency", "op": "ge", "value": 1}}
    narrow = {"metric": {"name": "frequency", "op": "ge", "value": most}}
    row = {"c0.kind": "metric", "c0.name": "frequency", "c0.op": "ge", "c0.value": "1"}
    but_not = {"c1.kind": "metric", "c1.name": "frequency", "c1.op": "ge", "c1.value": str(most),
               "c1.not": "on"}  # fmt: skip
    with store.connect() as conn:
        known = repository.catalog(conn)
    exact = [
        membership.size(
            store,
            SegmentDefinition.model_validate({"name": "x", "where": where}),
            _present(store),
            known,
        )
        for where in (broad, {"all": [broad, {"not": narrow}]})
    ]
    assert 0 < exact[0] - exact[1] < 10 <= exact[1]
    with session_client(base, "viewer") as (client, csrf):
        texts = [
            client.post(
                "/console/segments/preview",
                data={"name": _unique("diff"), "join": "all", **form, "csrf": csrf},
            ).text
            for form in (row, {**row, **but_not})
        ]
    shown = [re.search(r'data-size="&gt;=(\d+)"', text) for text in texts]
    assert all(s is not None for s in shown)
    assert [int(s[1]) for s in shown if s is not None] == [n // 10 * 10 for n in exact]
    assert not any(f'data-size="{n}"' in text for n, text in zip(exact, texts, strict=True))


def test_a_purchase_row_is_sized_as_the_service_sizes_it(console_world: World) -> None:
    base, store = console_world
    lines, products = schema.order_lines, schema.products
    with store.connect() as conn:
        category = conn.execute(  # the category most bought
            sa.select(products.c.category)
            .join(lines, lines.c.product_code == products.c.product_code)
            .where(products.c.category.is_not(None))
            .group_by(products.c.category)
            .order_by(sa.func.count().desc())
            .limit(1)
        ).scalar_one()
    name = _unique("buyers")
    form = {"name": name, "join": "all", "c0.kind": "purchase", "c0.name": category,
            "c0.op": "ge", "c0.value": "2", "c0.days": "365",
            "c1.kind": "consent", "c1.name": "marketing", "c1.op": "ne", "c1.value": "email",
            "c1.not": "on"}  # fmt: skip
    definition = SegmentDefinition.model_validate(
        {"name": name, "where": {"all": [
            {"purchase": {"category": category, "min_count": 2, "within_days": 365}},
            {"not": {"consent": {"purpose": "marketing", "channel": "email", "granted": False}}},
        ]}}
    )  # fmt: skip
    with store.connect() as conn:
        known = repository.catalog(conn)
    expected = membership.size(store, definition, _present(store), known)
    assert expected >= 10  # shown as a count to an analyst, to tens to a viewer
    shown = {
        "analyst": f'data-size="{expected}"',
        "viewer": f'data-size="&gt;={expected // 10 * 10}"',
    }
    for role, size in shown.items():
        with session_client(base, role) as (client, csrf):
            sized = client.post("/console/segments/preview", data={**form, "csrf": csrf})
        assert sized.status_code == 200
        assert size in sized.text, role
