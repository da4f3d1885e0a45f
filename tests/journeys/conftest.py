from __future__ import annotations

import copy
from typing import Any

import pytest

WELCOME: dict[str, Any] = {
    "name": "welcome",
    "entry": {"event": {"name": "Signed Up"}},
    "goal": {"event": "Order Completed"},
    "exit_on": [{"event": "Unsubscribed"}],
    "steps": [
        {"id": "hello", "send": {"channels": {"email": {"text": "Hello"}}}, "next": "pause"},
        {"id": "pause", "wait": {"days": 2}, "next": "reminder"},
        {
            "id": "reminder",
            "send": {"channels": {"email": {"text": "Still there?"}}},
            "out_of_stock": "similar",
            "next": "watch",
        },
        {
            "id": "watch",
            "wait_for_event": {"event": "Product Viewed", "timeout_hours": 72},
            "next": "lyon",
            "timeout": "done",
        },
        {
            "id": "lyon",
            "branch": {
                "if": {"trait": {"name": "city", "op": "eq", "value": "Lyon"}},
                "then": "offer",
                "else": "done",
            },
        },
        {"id": "offer", "send": {"channels": {"email": {"text": "Offer"}}}, "next": "done"},
        {"id": "similar", "send": {"channels": {"email": {"text": "Similar"}}}, "next": "done"},
        {"id": "done", "exit": {"reason": "finished"}},
    ],
}


@pytest.fixture
def welcome() -> dict[str, Any]:
    return copy.deepcopy(WELCOME)
