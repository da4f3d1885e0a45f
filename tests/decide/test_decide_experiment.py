"""``POST /v1/decide`` honours an experiment's assignment: a control member, and a person in
the global holdout, get the neutral content and are recorded as held out; a treated member
gets the personal decision."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import api_helpers
import httpx
import numpy as np
import sqlalchemy as sa
import yaml
from api_helpers import server_key
from decide_world import DAY, FakeRecommender, add_person
from fastapi import FastAPI

from surmesure.clock import utcnow
from surmesure.decide.decisions import why
from surmesure.decide.library import EXAMPLES, Library
from surmesure.experiments import catalog
from surmesure.experiments.assign import holdout_mask
from surmesure.experiments.definitions import parse
from surmesure.store import Store, schema

HOLDOUT = 0.2


def people() -> tuple[int, int, int, int]:
    """Ids of a control member, a treated member, one in the global holdout, and one never
    assigned, none of the first, second and fourth in the holdout."""
    ids = np.arange(1, 200, dtype=np.int64)
    held = holdout_mask(ids, HOLDOUT)
    # the holdout is a keyed hash: at 20 %, both kinds are among 200 ids
    inside, outside = ids[held].tolist(), ids[~held].tolist()
    return outside[0], outside[1], inside[0], outside[2]


@contextmanager
def serving(store: Store, folder: Path) -> Iterator[str]:
    banner = yaml.safe_load((Path(EXAMPLES) / "home_banner.yaml").read_text(encoding="utf-8"))
    banner["experiment"] = "banner_test"
    folder.mkdir()
    (folder / "home_banner.yaml").write_text(yaml.safe_dump(banner), encoding="utf-8")

    def prepare(app: FastAPI) -> None:
        app.state.templates = Library(folder)
        app.state.recommender = FakeRecommender()

    with api_helpers.serving(store, prepare, templates_dir=folder) as (base, _):
        yield base


def test_a_control_member_gets_the_neutral_content_recorded_as_held_out(
    store: Store, tmp_path: Path
) -> None:
    control, treated, held, never = people()
    for p in (control, treated, held, never):
        add_person(store, p, {"first_name": (f"Name{p}", "crm", 0.9, utcnow() - DAY)})
    definition = parse(
        {
            "name": "banner_test",
            "variants": [{"name": "control", "weight": 0.5}, {"name": "banner", "weight": 0.5}],
            "control": "control",
            "holdout": HOLDOUT,
            "primary": "conversion",
            "attribution_days": 14,
            "channel": "web",
        }
    )
    catalog.save(store, definition)
    with store.begin() as conn:
        conn.execute(
            schema.experiment_assignments.insert(),
            [
                {"experiment": "banner_test", "person_id": p, "variant": v, "assigned_at": utcnow()}
                for p, v in ((control, "control"), (treated, "banner"))
            ],
        )
    key = server_key(store, "decide")
    answers: dict[int, dict[str, Any]] = {}
    with serving(store, tmp_path / "templates") as base:
        for p in (control, treated, held, never):
            answer = httpx.post(
                f"{base}/v1/decide",
                json={"person_id": p, "placement": "home_banner"},
                auth=(key, ""),
                timeout=30,
            )
            assert answer.status_code == 200, answer.text
            answers[p] = answer.json()

    for p, reason in ((control, "control"), (held, "global_holdout")):
        body = answers[p]
        assert body["experiment"]["held_out"] is True and body["experiment"]["reason"] == reason
        assert body["content"]["variant"] == "default"
        assert f"Name{p}" not in body["content"]["body"]
        assert body["offers"] == []
        assert body["products"][0]["product_code"] == "P-POP"
        assert "held out" in body["explanation"]["content"]["variant"]["reason"]
    for p in (treated, never):
        body = answers[p]
        assert body["experiment"]["held_out"] is False
        assert body["content"]["variant"] == "evening"
        assert f"Name{p}" in body["content"]["body"]
        assert len(body["offers"]) == 2 and body["products"][0]["product_code"] == f"P-{p}"
    assert answers[treated]["experiment"]["variant"] == "banner"
    assert answers[never]["experiment"]["variant"] is None

    # the held-out decisions are recorded so, and no offer was shown to them
    e = schema.exposures
    with store.connect() as conn:
        offered = {
            int(r[0])
            for r in conn.execute(
                sa.select(e.c.person_id).where(e.c.content_id.not_like("home_banner/%"))
            )
        }
    assert offered == {treated, never}
    recorded = why(store, control, now=utcnow())
    assert recorded[0]["result"]["experiment"]["reason"] == "control"


def test_a_stopped_experiment_holds_nobody_out(store: Store, tmp_path: Path) -> None:
    control, *_ = people()
    add_person(store, control, {"first_name": ("Marie", "crm", 0.9, utcnow() - DAY)})
    definition = parse(
        {
            "name": "banner_test",
            "variants": [{"name": "control", "weight": 0.5}, {"name": "banner", "weight": 0.5}],
            "primary": "conversion",
            "attribution_days": 14,
        }
    )
    catalog.save(store, definition)
    with store.begin() as conn:
        conn.execute(
            schema.experiment_assignments.insert().values(
                experiment="banner_test", person_id=control, variant="control", assigned_at=utcnow()
            )
        )
    catalog.stop(store, "banner_test")
    key = server_key(store, "decide")
    with serving(store, tmp_path / "templates") as base:
        body = httpx.post(
            f"{base}/v1/decide",
            json={"person_id": control, "placement": "home_banner"},
            auth=(key, ""),
            timeout=30,
        ).json()
    assert body["experiment"]["held_out"] is False and "Marie" in body["content"]["body"]
