"""Discovered segments: k-means finds three well-separated groups of customers (adjusted Rand
index against the truth), names them by their centroids, saves them as memberships and plots
the centroids; on DuckDB and PostgreSQL, and through the CLI."""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pytest
import sqlalchemy as sa
import typer
from sklearn.metrics import adjusted_rand_score
from typer.testing import CliRunner

from surmesure.cli.segment import register
from surmesure.config import get_settings
from surmesure.domain.segments import SegmentDefinition
from surmesure.errors import Conflict, InvalidInput
from surmesure.segment import discover, repository
from surmesure.store import Store, open_store, schema

NOW = datetime(2026, 3, 31, 12, 0)
PER_GROUP = 60
# recency_days, frequency, monetary, p_alive, expected_value: one profile per group
PROFILES = [
    (10.0, 20.0, 3000.0, 0.95, 900.0),  # champions
    (300.0, 1.0, 40.0, 0.10, 5.0),  # lost
    (60.0, 4.0, 300.0, 0.60, 120.0),  # in between
]
COLUMNS = ("recency_days", "frequency", "monetary", "p_alive", "expected_value")


def synthetic(store: Store) -> dict[int, int]:
    """Three groups of persons with metrics around their profile; an older row per person with
    other values (the latest row counts) and a merged person (left out). Returns the truth."""
    rng = np.random.default_rng(7)
    truth: dict[int, int] = {}
    people, metrics = [], []
    for group, profile in enumerate(PROFILES):
        for i in range(PER_GROUP):
            pid = 1 + group * PER_GROUP + i
            truth[pid] = group
            values = [v * float(rng.uniform(0.85, 1.15)) for v in profile]
            values[1] = round(values[1])
            people.append({"person_id": pid, "created_at": NOW, "updated_at": NOW})
            for day, row in ((date(2026, 3, 30), values), (date(2026, 1, 1), PROFILES[2 - group])):
                metrics.append(
                    {
                        "person_id": pid,
                        "computed_on": day,
                        "computed_at": datetime.combine(day, datetime.min.time()),
                        "as_of": day,
                        **dict(zip(COLUMNS, row, strict=True)),
                        "horizon_days": 365,
                        "discount_rate": 0.1,
                        "window_days": 30,
                    }
                )
    people.append({"person_id": 999, "merged_into": 1, "created_at": NOW, "updated_at": NOW})
    metrics.append({**metrics[0], "person_id": 999})
    with store.begin() as conn:
        for table in (schema.derived_metrics, schema.segment_changes, schema.segment_members):
            conn.execute(table.delete())
        conn.execute(schema.people.delete())
        conn.execute(schema.people.insert(), [{"merged_into": None, **p} for p in people])
        conn.execute(schema.derived_metrics.insert(), metrics)
    return truth


def assignment(found: discover.Discovery) -> dict[int, int]:
    return {p: i for i, c in enumerate(found.clusters) for p in c.person_ids}


def test_finds_names_and_saves_three_groups(store: Store) -> None:
    truth = synthetic(store)
    found = discover.discover(store, 3)
    labels = assignment(found)
    assert sorted(labels) == sorted(truth)  # current persons only, each once
    ids = sorted(truth)
    assert adjusted_rand_score([truth[p] for p in ids], [labels[p] for p in ids]) > 0.9
    assert found.features == list(COLUMNS)
    assert [c.name for c in found.clusters] == ["cluster_0", "cluster_1", "cluster_2"]

    # names: the two largest |z| of each centroid, recomputed from the raw values
    with store.connect() as conn:
        pids, features, values = discover.load_features(conn)
    x = values.copy()
    for j, name in enumerate(features):
        if name in ("frequency", "monetary", "expected_value"):
            x[:, j] = np.log1p(x[:, j])
    z = (x - x.mean(axis=0)) / x.std(axis=0)
    for c in found.clusters:
        inside = np.isin(pids, list(c.person_ids))
        centre = z[inside].mean(axis=0)
        top = np.argsort(-np.abs(centre), kind="stable")[:2]
        expected = ", ".join(f"{'high' if centre[j] > 0 else 'low'} {features[j]}" for j in top)
        assert c.label == expected
        assert c.size == int(inside.sum())
    by_group = {truth[c.person_ids[0]]: c for c in found.clusters}
    assert by_group[0].mean["monetary"] > 2000 > by_group[2].mean["monetary"]
    assert by_group[1].z["recency_days"] > 0 > by_group[0].z["recency_days"]

    again = discover.discover(store, 3)
    assert [c.label for c in again.clusters] == [c.label for c in found.clusters]
    chosen = discover.discover(store)
    assert chosen.k == 3 and set(chosen.silhouettes) == set(range(2, 9))
    assert chosen.silhouette == max(chosen.silhouettes.values())

    moved = discover.save(store, found, NOW)
    assert moved == {c.name: c.size for c in found.clusters}
    m = schema.segment_members
    with store.connect() as conn:
        stored = {
            name: {
                int(p) for (p,) in conn.execute(sa.select(m.c.person_id).where(m.c.segment == name))
            }
            for name in ("cluster_0", "cluster_1", "cluster_2")
        }
    assert stored == {c.name: set(c.person_ids) for c in found.clusters}

    fewer = discover.discover(store, 2)
    later = datetime(2026, 4, 1)
    moved = discover.save(store, fewer, later)
    with store.connect() as conn:
        left = conn.execute(
            sa.select(sa.func.count()).where(m.c.segment == "cluster_2")
        ).scalar_one()
        exits = conn.execute(
            sa.select(sa.func.count()).where(
                schema.segment_changes.c.segment == "cluster_2",
                schema.segment_changes.c.change == "exited",
                schema.segment_changes.c.changed_at == later,
            )
        ).scalar_one()
    assert left == 0 and exits == found.clusters[2].size == moved["cluster_2"]

    repository.save(
        store,
        SegmentDefinition.model_validate(
            {
                "name": "cluster_1",
                "where": {"metric": {"name": "p_alive", "op": "gt", "value": 0.5}},
            }
        ),
        NOW,
    )
    with pytest.raises(Conflict):
        discover.save(store, found, NOW)
    with pytest.raises(InvalidInput):
        discover.discover(store, 3, prefix="Bad Prefix")


def test_cli_discover_saves_and_plots(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    url = f"duckdb:///{tmp_path / 'store.duckdb'}"
    store = open_store(url)
    truth = synthetic(store)
    store.dispose()
    monkeypatch.setenv("SURMESURE_DATABASE_URL", url)
    get_settings.cache_clear()
    app = typer.Typer()
    register(app)
    plot = tmp_path / "centroids.png"
    result = CliRunner().invoke(
        app, ["segment", "discover", "--k", "3", "--save", "--plot", str(plot), "--json"]
    )
    get_settings.cache_clear()
    assert result.exit_code == 0, result.output
    payload: dict[str, Any] = orjson.loads(result.stdout)
    assert payload["k"] == 3 and payload["saved"] is True
    assert sum(c["size"] for c in payload["clusters"]) == len(truth)
    assert payload["changes"] == {c["name"]: c["size"] for c in payload["clusters"]}
    data = plot.read_bytes()
    assert data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) > 5_000
    again = CliRunner().invoke(app, ["segment", "discover", "--k", "3", "--save"])
    assert again.exit_code == 0, again.output
    # long work shows where it is: the fit and each segment saved
    assert "k = 3 chosen" in again.output and "saved cluster_2" in again.output
    bad = CliRunner().invoke(app, ["segment", "discover", "--k", "1"])
    assert bad.exit_code != 0 and "--k" in bad.output


def test_a_metric_unknown_in_a_cluster_has_no_mean(store: Store) -> None:
    """E-mail metrics known for the champions only: the other clusters report no mean for
    them (None), without a warning about an empty slice."""
    synthetic(store)
    champions = list(range(1, PER_GROUP + 1))
    rates = np.random.default_rng(3).uniform(0.2, 0.6, PER_GROUP)
    with store.begin() as conn:
        for pid, rate in zip(champions, rates, strict=True):
            conn.execute(
                schema.derived_metrics.update()
                .where(schema.derived_metrics.c.person_id == pid)
                .values(open_rate=float(rate))
            )
    found = discover.discover(store, 3)
    assert "open_rate" in found.features
    means = {c.person_ids[0] <= PER_GROUP: c.mean["open_rate"] for c in found.clusters}
    outside = [c.mean["open_rate"] for c in found.clusters if c.person_ids[0] > PER_GROUP]
    assert outside == [None, None]
    assert means[True] == pytest.approx(float(rates.mean()), abs=1e-6)
