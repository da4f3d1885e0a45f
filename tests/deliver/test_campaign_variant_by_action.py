"""A campaign whose template picks its variant by next best action: each person planned gets
the variant of the action the saved model (fitted on a Hillstrom sample) ranks first, the
neutral one for "do nothing" or a feature it cannot read; the outbox keeps the action and the
variant, the decision log its arithmetic, the message reads as the variant, the preview says
why, and results compare each variant's people with the control people the model gave the
same action. On DuckDB and PostgreSQL."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from campaign_world import T0, add_people, document

from action_model_world import hillstrom_sample, save_hillstrom
from conftest import invoke, opened_rows
from surmesure.collect import sink
from surmesure.config import get_settings
from surmesure.decide import action_models
from surmesure.deliver import documents, results, service
from surmesure.deliver.web import WebChannel
from surmesure.errors import InvalidInput
from surmesure.learn.uplift.saved import ActionModel
from surmesure.store import Store, open_store, schema

TEMPLATE = """
name: offer_page
placement: offer_page
channel: web
variants:
  - {name: mens, subject: Men, body: "For him"}
  - {name: womens, subject: Women, body: "For her"}
  - {name: neutral, subject: News, body: "Our news"}
next_best_action:
  model: hill
  min_reliability: 0
  actions: {"Mens E-Mail": mens, "Womens E-Mail": womens}
  features:
    recency: {trait: recency}
    history: {trait: history}
    zip_code: {trait: zip_code}
"""
# recency (months), history (dollars), zip code; None: the trait is missing
PROFILES: list[dict[str, Any]] = [
    {"recency": 1, "history": 400, "zip_code": "Surburban"},
    {"recency": 6, "history": 400, "zip_code": "Urban"},
    {"recency": 3, "history": 30, "zip_code": "Rural"},
    {"recency": 6, "history": 400, "zip_code": None},
    {"recency": 6, "history": 400, "zip_code": "Downtown"},  # a level the model never saw
]
N = 30
BODY = {"mens": "For him", "womens": "For her", "neutral": "Our news"}


@pytest.fixture(scope="module")
def fitted(tmp_path_factory: pytest.TempPathFactory) -> ActionModel:
    """The model fitted once, in a store of its own (copied into each test's store)."""
    folder = tmp_path_factory.mktemp("hill")
    own = open_store(f"duckdb:///{folder / 'fit.duckdb'}")
    with pytest.MonkeyPatch.context() as monkeypatch:
        assert save_hillstrom(monkeypatch, own, hillstrom_sample(folder / "hill.csv"))["saved"]
    with own.connect() as conn:
        model = action_models.load(conn, "hill")
    own.dispose()
    return model


@pytest.fixture
def templates(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    folder = tmp_path / "templates"
    folder.mkdir()
    (folder / "offer_page.yaml").write_text(TEMPLATE)
    short = TEMPLATE.replace("offer_page", "short_page")
    (folder / "short_page.yaml").write_text(short.replace("    history: {trait: history}\n", ""))
    monkeypatch.setenv("SURMESURE_TEMPLATES_DIR", str(folder))
    get_settings.cache_clear()
    yield folder
    get_settings.cache_clear()


def _world(store: Store, folder: Path, model: ActionModel) -> dict[int, int]:
    with store.begin() as conn:
        action_models.save(conn, model, T0)
    ids = add_people(store, folder, N)
    with store.begin() as conn:
        for i in range(1, N + 1):
            traits = {k: v for k, v in PROFILES[(i - 1) % len(PROFILES)].items() if v is not None}
            sink.write_traits(
                store,
                conn,
                record_keys=[f"{i}:profile"],
                person_ids=[ids[i]],
                node_ids=[ids[i]],
                traits=[traits],
                sources=["crm"],
                observed_at=[T0 - timedelta(days=1)],
                reliabilities=[0.9],
            )
    doc = document(
        name="hill_offer",
        channels={"web": {"template": "offer_page"}},
        policy={"order": ["web"]},
        control=0.3,
    )
    documents.save(store, documents.parse(doc), T0)
    return ids


def _expected(model: ActionModel, profile: dict[str, Any]) -> tuple[str | None, str]:
    """The action and variant the model gives a profile, read here without the campaign."""
    row, _ = model.row(profile)
    if row is None:
        return None, "neutral"
    choice, _ = model.choose(row)
    action = choice.name(0)
    return action, {"Mens E-Mail": "mens", "Womens E-Mail": "womens"}.get(action, "neutral")


def test_the_variant_follows_each_persons_next_best_action(
    store: Store,
    tmp_path: Path,
    templates: Path,
    fitted: ActionModel,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ids = _world(store, tmp_path, fitted)
    want = {ids[i]: _expected(fitted, PROFILES[(i - 1) % len(PROFILES)]) for i in range(1, N + 1)}
    # the first three profiles get three different choices: the variant really follows them
    assert {want[ids[k]] for k in (1, 2, 3)} == {
        ("Womens E-Mail", "womens"),
        ("Mens E-Mail", "mens"),
        ("do nothing", "neutral"),
    }

    preview = service.preview(store, "hill_offer", "customer_id:C1", T0)
    assert preview["next_best_action"]["variant"] == "womens"
    assert preview["next_best_action"]["action"] == "Womens E-Mail"
    assert "Womens E-Mail: uplift" in preview["next_best_action"]["arithmetic"]
    if preview["status"] == "planned":
        assert preview["content"]["text"].strip() == "For her"
    unseen = service.preview(store, "hill_offer", "customer_id:C5", T0)["next_best_action"]
    assert unseen["variant"] == "neutral" and unseen["action"] is None
    assert "'Downtown' is not one of the levels" in unseen["reason"]
    monkeypatch.setenv("SURMESURE_DATABASE_URL", store.url)
    shown = invoke(
        monkeypatch, store.url, "campaign", "preview", "hill_offer", "--person", "customer_id:C1"
    )
    assert "variant womens: next best action: Womens E-Mail" in shown.output

    seen: list[Any] = []

    class Recording(WebChannel):
        def send(self, messages: Any, on_result: Any = None) -> Any:
            seen.extend(messages)
            return super().send(messages, on_result)

    service.send(store, "hill_offer", T0, channels={"web": Recording()}, folder=tmp_path)
    m = schema.messages
    with store.connect() as conn:
        rows = conn.execute(sa.select(m.c.person_id, m.c.status, m.c.action, m.c.variant)).all()
    assert len(rows) == N
    for person, _, action, variant in rows:
        assert (action, variant) == want[person], person  # held out too: what they would get
    sent = {int(x.person_id): x.text.strip() for x in seen}
    treated = {int(r[0]) for r in rows if r[1] == "sent"}
    assert set(sent) == treated and 0 < len(treated) < N
    assert all(sent[p] == BODY[want[p][1]] for p in treated)

    logged = opened_rows(store, "decisions", "placement = :p", p="campaign:hill_offer")
    assert len(logged) == N
    for d in logged:
        note = d["explanation"]["next_best_action"]
        assert (d["result"]["action"], d["result"]["variant"]) == want[d["person_id"]]
        assert note["model"] == "hill" and note["action"] == want[d["person_id"]][0]

    out = results.measure(store, "hill_offer")
    by = {(v["variant"], v["action"]): v for v in out["variants"]}
    counted = Counter((want[int(r[0])][1], want[int(r[0])][0]) for r in rows)
    assert set(by) == set(counted)
    for key, row in by.items():
        assert row["treated"] + row["control"] == counted[key]
    assert sum(v["treated"] for v in out["variants"]) == out["comparisons"][0]["treated"]
    monkeypatch.setenv("COLUMNS", "200")  # the table's rows unwrapped
    printed = invoke(monkeypatch, store.url, "campaign", "results", "hill_offer")
    assert "womens (Womens E-Mail)" in printed.output

    # a template whose mapping misses a feature of the model is refused by the campaign's check
    short = document(
        name="short", channels={"web": {"template": "short_page"}}, policy={"order": ["web"]}
    )
    with store.connect() as conn, pytest.raises(InvalidInput) as refused:
        documents.check_references(conn, documents.parse(short), tmp_path)
    assert refused.value.field == "next_best_action.features.history"
