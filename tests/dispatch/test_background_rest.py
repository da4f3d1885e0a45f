"""The server's dispatcher rests after each round: the gap after a short round, a multiple of a
long one (so that a heavy stream is taken in fewer, larger rounds), never more than its bound,
and no longer once the event writer says the stream paused."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from surmesure.config import get_settings
from surmesure.dispatch import background
from surmesure.dispatch.background import Background
from surmesure.store import Store


def test_a_short_round_is_followed_by_the_gap(duckdb_store: Store) -> None:
    dispatcher = Background(duckdb_store, get_settings(), gap=0.2, pace=4.0, longest=1.0)
    assert dispatcher.rest(0.01) == pytest.approx(0.2)
    assert dispatcher.rest(0.05) == pytest.approx(0.2)


def test_a_long_round_is_followed_by_a_rest_in_proportion_up_to_the_bound(
    duckdb_store: Store,
) -> None:
    dispatcher = Background(duckdb_store, get_settings(), gap=0.2, pace=4.0, longest=1.0)
    assert dispatcher.rest(0.1) == pytest.approx(0.4)
    assert dispatcher.rest(0.2) == pytest.approx(0.8)
    assert dispatcher.rest(3.0) == pytest.approx(1.0)


def test_a_gap_longer_than_the_bound_is_kept(duckdb_store: Store) -> None:
    assert Background(duckdb_store, get_settings(), gap=2.0, longest=1.0).rest(
        5.0
    ) == pytest.approx(2.0)
    assert Background(duckdb_store, get_settings(), gap=0.0, pace=0.0).rest(5.0) == 0.0


def test_the_thread_rests_after_a_round_by_how_long_that_round_took(
    duckdb_store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = [100.0]
    monkeypatch.setattr(background.time, "monotonic", lambda: clock[0])
    rests: list[float] = []

    class Timed(Background):
        def _round(self) -> None:
            clock[0] += 0.15  # the round's work, on the controlled clock
            self._stopping = True  # one round is enough to see the rest that follows

    dispatcher = Timed(duckdb_store, get_settings(), gap=0.2, pace=4.0, longest=1.0)
    dispatcher._hurried = SimpleNamespace(wait=rests.append, clear=lambda: None)  # type: ignore[assignment]
    dispatcher.kick()
    dispatcher._run()
    assert rests == [pytest.approx(0.6)]


def test_a_pause_of_the_stream_ends_the_rest(
    duckdb_store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = [100.0]
    monkeypatch.setattr(background.time, "monotonic", lambda: clock[0])

    class Paused(Background):
        def _round(self) -> None:
            clock[0] += 0.25  # a rest of a second would follow
            self.hurry()  # the event writer saw no request for a while meanwhile
            self._stopping = True

    dispatcher = Paused(duckdb_store, get_settings(), gap=0.2, pace=4.0, longest=1.0)
    waits: list[tuple[float, bool]] = []
    hurried = dispatcher._hurried
    dispatcher._hurried = SimpleNamespace(  # type: ignore[assignment]
        wait=lambda timeout: waits.append((timeout, hurried.wait(timeout))),
        clear=hurried.clear,
        set=hurried.set,
    )
    dispatcher.kick()
    dispatcher._run()
    assert waits == [(pytest.approx(1.0), True)]  # the rest was cut short, not waited out


def test_by_default_a_rest_never_keeps_a_change_past_a_second(duckdb_store: Store) -> None:
    """The round under way, the rest and the next round: the rest is held to half a second."""
    dispatcher = Background(duckdb_store, get_settings())
    assert dispatcher.rest(0.01) == pytest.approx(0.2)
    assert dispatcher.rest(10.0) == pytest.approx(0.5)
