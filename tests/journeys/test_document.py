"""Journey documents: what validation refuses, with the place and the fix."""

from __future__ import annotations

from typing import Any

import pytest
from journey_world import welcome_document

from surmesure.errors import InvalidInput
from surmesure.journeys.document import json_schema, parse


def _refused(document: dict[str, Any]) -> InvalidInput:
    with pytest.raises(InvalidInput) as caught:
        parse(document)
    return caught.value


def test_a_valid_journey_reads_back_the_same() -> None:
    welcome = welcome_document()
    journey = parse(welcome)
    assert journey.first == "hello"
    assert parse(journey.document()) == journey


def test_an_unreachable_step_is_refused_with_its_place() -> None:
    welcome = welcome_document()
    welcome["steps"][0]["next"] = "reminder"  # nothing leads to pause
    error = _refused(welcome)
    assert error.field == "steps[1]"
    assert "'pause' cannot be reached" in error.message
    assert "lead to it" in (error.hint or "")


def test_a_loop_without_a_wait_is_refused() -> None:
    welcome = welcome_document()
    welcome["steps"][5]["next"] = "lyon"  # offer -> lyon -> offer
    error = _refused(welcome)
    assert "loop without a wait" in error.message
    assert "lyon" in error.message and "offer" in error.message
    assert "wait" in (error.hint or "")


def test_a_loop_through_a_wait_is_accepted() -> None:
    welcome = welcome_document()
    welcome["steps"][5]["next"] = "pause"
    assert parse(welcome).step("offer").next == "pause"


def test_a_wait_for_event_without_a_timeout_is_refused() -> None:
    welcome = welcome_document()
    del welcome["steps"][3]["timeout"]
    error = _refused(welcome)
    assert error.field == "steps[3].timeout"
    assert "'watch'" in error.message

    welcome["steps"][3]["timeout"] = "done"
    del welcome["steps"][3]["wait_for_event"]["timeout_hours"]
    assert _refused(welcome).field == "steps[3].wait_for_event.timeout_hours"


def test_a_step_leading_to_no_step_names_the_field() -> None:
    welcome = welcome_document()
    welcome["steps"][1]["next"] = "nowhere"
    error = _refused(welcome)
    assert error.field == "steps[1].next"
    assert "hello" in (error.hint or "")


def test_an_unknown_channel_and_an_unknown_node_kind() -> None:
    welcome = welcome_document()
    welcome["steps"][0]["send"]["channels"] = {"pigeon": {"text": "x"}}
    error = _refused(welcome)
    assert error.field.startswith("steps[0].send.channels")
    assert "(step 'hello')" in error.message

    welcome["steps"][0] = {"id": "hello", "sned": {}, "next": "pause"}
    error = _refused(welcome)
    assert error.field == "steps[0]"
    assert "send" in (error.hint or "")


def test_the_json_schema_names_every_step_kind() -> None:
    text = str(json_schema())
    for kind in ("SendStep", "WaitForEventStep", "BranchStep", "SplitStep", "WebhookStep"):
        assert kind in text
