"""Properties of trait resolution by effective reliability and recency."""

from __future__ import annotations

from datetime import datetime, timedelta

from hypothesis import assume, given, settings
from hypothesis import strategies as st

from surmesure.domain.traits import Observation, effective_reliability, resolve

NOW = datetime(2025, 6, 1)
HALF_LIFE = 365.0


def observations(
    *, reliabilities: st.SearchStrategy[float] | None = None, future: bool = False
) -> st.SearchStrategy[list[Observation]]:
    """Observations of one trait; with ``future`` all are dated after ``NOW`` (age 0, so
    equal reliabilities tie)."""
    offsets = st.integers(1, 400) if future else st.integers(-2_000, 0)
    one = st.builds(
        Observation,
        name=st.just("city"),
        value=st.one_of(st.none(), st.sampled_from(["Lyon", "Paris", "Nice", "Lille"])),
        source=st.sampled_from(["crm", "shop", "web", "survey"]),
        observed_at=offsets.map(lambda d: NOW + timedelta(days=d)),
        reliability=st.floats(0.0, 1.0) if reliabilities is None else reliabilities,
    )
    return st.lists(one, min_size=1, max_size=8)


def _key(obs: Observation) -> tuple[object, ...]:
    return (obs.value, obs.source, obs.observed_at, obs.reliability)


@settings(max_examples=300, deadline=None)
@given(observations())
def test_the_winner_has_the_highest_effective_reliability(obs: list[Observation]) -> None:
    resolved = resolve(obs, NOW, HALF_LIFE)
    known = [o for o in obs if o.value is not None]
    if not known:
        assert resolved == {}
        return
    winner = resolved["city"]
    best = max(effective_reliability(o, NOW, HALF_LIFE) for o in known)
    assert winner.value is not None
    assert winner.effective_reliability >= best - 1e-9
    assert len(winner.competing) == len(known) - 1


@settings(max_examples=300, deadline=None)
@given(observations(reliabilities=st.sampled_from([0.5, 0.8]), future=True))
def test_ties_go_to_the_most_recent(obs: list[Observation]) -> None:
    known = [o for o in obs if o.value is not None]
    assume(known)
    winner = resolve(obs, NOW, HALF_LIFE)["city"]
    top = max(o.reliability for o in known)
    assert winner.observed_at == max(o.observed_at for o in known if o.reliability == top)


@settings(max_examples=300, deadline=None)
@given(observations(), st.integers(1, 3_000), st.floats(0.0, 1.0), st.sampled_from(["a", "zz"]))
def test_a_less_reliable_older_observation_never_changes_the_winner(
    obs: list[Observation], older_by: int, fraction: float, source: str
) -> None:
    before = resolve(obs, NOW, HALF_LIFE)
    assume("city" in before)
    winner = before["city"]
    extra = Observation(
        "city",
        "Elsewhere",
        source,
        winner.observed_at - timedelta(days=older_by),
        winner.reliability * fraction,
    )
    after = resolve([*obs, extra], NOW, HALF_LIFE)["city"]
    assert (after.value, after.source, after.observed_at, after.reliability) == (
        winner.value,
        winner.source,
        winner.observed_at,
        winner.reliability,
    )


@settings(max_examples=100, deadline=None)
@given(observations())
def test_missing_values_never_win(obs: list[Observation]) -> None:
    blank = [Observation(o.name, None, o.source, o.observed_at, 1.0) for o in obs]
    resolved = resolve([*obs, *blank], NOW, HALF_LIFE)
    assert {_key(o) for o in obs if o.value is not None} == (
        {_key(resolved["city"])} | {_key(c) for c, _ in resolved["city"].competing}
        if "city" in resolved
        else set()
    )
