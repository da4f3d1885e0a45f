"""What an import of the demo world should give, checked against the store's status.

Each check compares a figure of :func:`surmesure.store.status.collect_status` with the value
the world's manifest says it must have once every file is imported, web events included.
"""

from __future__ import annotations

from typing import Any


def checks(manifest: dict[str, Any], status: dict[str, Any]) -> list[dict[str, Any]]:
    """One ``{"what", "expected", "found", "ok"}`` per figure."""
    truth = manifest["truth"]
    injected = sum(f["malformed_rows"] for f in manifest["files"])
    expected: list[tuple[str, str, int]] = [
        ("identified people = true customers", "identified_people", truth["customers"]),
        ("orders", "orders", truth["orders"]),
        ("order lines", "order_lines", truth["order_lines"]),
        ("returns", "returns", truth["returns"]),
        ("anonymous orders", "anonymous_orders", truth["anonymous_orders"]),
        ("quarantined records = spoiled rows", "quarantine", injected),
    ]
    expected.append(
        ("anonymous people = web devices never identified", "anonymous_people",
         truth["web"]["anonymous_devices"])
    )  # fmt: skip
    expected.append(("web messages stored", "events", truth["web"]["messages"]))
    out = []
    for what, key, value in expected:
        found = status["quarantine"]["total"] if key == "quarantine" else status.get(key)
        out.append({"what": what, "expected": value, "found": found, "ok": found == value})
    return out
