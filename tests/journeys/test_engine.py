"""The step function, signal by signal, without I/O."""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta

import pytest
from journey_world import welcome_document

from surmesure.journeys.document import JourneyDefinition, parse
from surmesure.journeys.engine import (
    Assigned,
    CallWebhook,
    ConsentWithdrawn,
    Event,
    Facts,
    Location,
    Send,
    State,
    StepFailed,
    StockChange,
    Tick,
    UpdateTrait,
    enter,
    step,
)

T0 = datetime(2026, 3, 2, 8, 0)


@pytest.fixture
def journey() -> JourneyDefinition:
    welcome = welcome_document()
    return parse(welcome)


def test_entering_sends_then_pauses(journey: JourneyDefinition) -> None:
    out = enter(journey, 7, 1, T0)
    assert out.actions == (Send("hello"),)
    assert out.visited == ("hello", "pause")
    assert out.state.step == "pause" and out.state.status == "running"
    assert out.state.due_at == T0 + timedelta(days=2)


def test_a_tick_before_the_due_time_changes_nothing(journey: JourneyDefinition) -> None:
    state = enter(journey, 7, 1, T0).state
    out = step(journey, state, Tick(), T0 + timedelta(days=1))
    assert out.state == state and out.actions == () and out.transitions == 0


def test_the_wait_ends_then_the_wait_for_event_times_out(journey: JourneyDefinition) -> None:
    state = enter(journey, 7, 1, T0).state
    out = step(journey, state, Tick(), T0 + timedelta(days=2))
    assert out.actions == (Send("reminder"),)
    assert out.state.step == "watch"
    assert out.state.due_at == T0 + timedelta(days=2, hours=72)
    late = step(journey, out.state, Tick(), T0 + timedelta(days=5))
    assert late.state.status == "done" and late.state.reason == "finished"
    assert late.visited == ("done",)


def test_the_awaited_event_takes_the_branch(journey: JourneyDefinition) -> None:
    state = enter(journey, 7, 1, T0).state
    state = step(journey, state, Tick(), T0 + timedelta(days=2)).state
    other = step(journey, state, Event("Page Viewed"), T0 + timedelta(days=3))
    assert other.state == state
    lyon = Facts(conditions=frozenset({"lyon"}))
    out = step(journey, state, Event("Product Viewed"), T0 + timedelta(days=3), lyon)
    assert out.actions == (Send("offer"),)
    assert out.visited == ("lyon", "offer", "done")
    elsewhere = step(journey, state, Event("Product Viewed"), T0 + timedelta(days=3))
    assert elsewhere.actions == () and elsewhere.visited == ("lyon", "done")


def test_the_goal_ends_at_any_step_as_a_conversion(journey: JourneyDefinition) -> None:
    state = enter(journey, 7, 1, T0).state
    out = step(journey, state, Event("Order Completed"), T0 + timedelta(hours=1))
    assert out.state.status == "done" and out.state.reason == "goal"
    assert out.actions == ()
    again = step(journey, out.state, Tick(), T0 + timedelta(days=9))
    assert again.state == out.state and again.actions == ()


def test_exit_conditions_and_consent_withdrawal_end_at_once(journey: JourneyDefinition) -> None:
    state = enter(journey, 7, 1, T0).state
    assert step(journey, state, Event("Unsubscribed"), T0).state.reason == "exit_on"
    assert step(journey, state, ConsentWithdrawn(), T0).state.reason == "consent_withdrawn"


def test_a_stock_out_reroutes_a_person_waiting_before_the_send(
    journey: JourneyDefinition,
) -> None:
    state = enter(journey, 7, 1, T0, product="P1").state
    other = step(journey, state, StockChange("P2", in_stock=False), T0)
    assert other.state == state
    back = step(journey, state, StockChange("P1", in_stock=True), T0)
    assert back.state == state
    out = step(journey, state, StockChange("P1", in_stock=False), T0 + timedelta(hours=5))
    assert out.actions == (Send("similar"),)
    assert out.state.status == "done"


def test_an_out_of_stock_product_at_send_time_takes_the_exit(journey: JourneyDefinition) -> None:
    state = enter(journey, 7, 1, T0, product="P1").state
    out = step(journey, state, Tick(), T0 + timedelta(days=2), Facts(out_of_stock=True))
    assert out.actions == (Send("similar"),)
    no_product = enter(journey, 8, 1, T0).state
    plain = step(journey, no_product, Tick(), T0 + timedelta(days=2), Facts(out_of_stock=True))
    assert plain.actions == (Send("reminder"),)


def test_a_location_near_a_store_ends_a_geofence_wait() -> None:
    welcome = welcome_document()
    welcome["steps"][3]["wait_for_event"] = {
        "event": "Store Nearby",
        "near_km": 2,
        "timeout_hours": 24,
    }
    journey = parse(welcome)
    state = step(journey, enter(journey, 7, 1, T0).state, Tick(), T0 + timedelta(days=2)).state
    assert step(journey, state, Location(5.0), T0 + timedelta(days=2)).state == state
    near = step(journey, state, Location(1.5), T0 + timedelta(days=2))
    assert near.visited == ("lyon", "done")


def test_a_failed_step_takes_its_error_exit_else_ends() -> None:
    welcome = welcome_document()
    journey = parse(welcome)
    state = enter(journey, 7, 1, T0).state
    out = step(journey, state, StepFailed("hello", "template: x"), T0)
    assert out.state.status == "done" and out.state.reason == "failed: template: x"
    welcome["steps"][0]["error"] = "similar"
    journey = parse(welcome)
    out = step(journey, state, StepFailed("hello", "template: x"), T0)
    assert out.actions == (Send("similar"),)


def test_wait_until_a_local_time_in_the_persons_zone() -> None:
    welcome = welcome_document()
    welcome["steps"][1]["wait"] = {"until": "09:30"}
    journey = parse(welcome)
    # 08:00 UTC is 09:00 in Paris (winter): 09:30 Paris is 08:30 UTC the same day
    assert enter(journey, 7, 1, T0).state.due_at == datetime(2026, 3, 2, 8, 30)
    # 08:00 UTC is 03:00 in New York: 09:30 there is 14:30 UTC
    ny = enter(journey, 7, 1, T0, Facts(zone="America/New_York")).state
    assert ny.due_at == datetime(2026, 3, 2, 14, 30)
    # already past in Tokyo (17:00): tomorrow 09:30 there, 00:30 UTC
    tokyo = enter(journey, 7, 1, T0, Facts(zone="Asia/Tokyo")).state
    assert tokyo.due_at == datetime(2026, 3, 3, 0, 30)


def _split_journey() -> JourneyDefinition:
    return parse(
        {
            "name": "ab",
            "entry": {"schedule": {}},
            "steps": [
                {
                    "id": "cut",
                    "split": {
                        "paths": [
                            {"weight": 3, "next": "mail"},
                            {"weight": 1, "next": "mail", "control": True},
                        ]
                    },
                },
                {"id": "mail", "send": {"channels": {"email": {"text": "x"}}}, "next": "mark"},
                {"id": "mark", "update_trait": {"trait": "seen", "value": 1}, "next": "hook"},
                {"id": "hook", "webhook": {"url": "https://example.org/x"}, "next": "end"},
                {"id": "end", "exit": {}},
            ],
        }
    )


def test_a_split_follows_its_weights_and_holds_the_control_out() -> None:
    journey = _split_journey()
    paths: Counter[int] = Counter()
    for person in range(20_000):
        out = enter(journey, person, 1, T0)
        assigned = out.actions[0]
        assert isinstance(assigned, Assigned)
        paths[assigned.path] += 1
        if assigned.control:
            assert out.actions[1:] == (Send("mail", held=True),)
            assert out.state.held
        else:
            assert out.actions[1:] == (
                Send("mail"),
                UpdateTrait("mark", "seen", 1),
                CallWebhook("hook", "https://example.org/x", 3),
            )
    # 3:1 weights; binomial sd of the control count is sqrt(20000 * .25 * .75) = 61
    assert abs(paths[1] - 5000) < 4 * 61
    # the same person, the same path
    assert enter(journey, 11, 1, T0).actions == enter(journey, 11, 1, T0).actions


def test_a_state_on_a_step_missing_from_its_version_ends() -> None:
    journey = _split_journey()
    stray = State(1, 1, "gone", "running", T0, due_at=T0)
    assert step(journey, stray, Tick(), T0).state.reason == "unknown_step"
