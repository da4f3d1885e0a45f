"""What a step means for one person: the path of a split they take (a hash of who they are,
the same on every worker) and when a wait ends for them (in their time zone)."""

from __future__ import annotations

from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from surmesure.decide.context import zone_named
from surmesure.journeys.steps import SplitStep, WaitStep
from surmesure.segment.evaluate import bucket_of

DEFAULT_ZONE = "Europe/Paris"
UTC = ZoneInfo("UTC")


def split_path(journey: str, node: SplitStep, person_id: int, entry: int) -> int:
    """The path of ``node`` a person takes: a deterministic hash of journey, step, entry and
    person against the cumulated weights (the same person, the same path, on every worker)."""
    total = sum(p.weight for p in node.split.paths)
    point = bucket_of(f"{journey}:{node.id}:{entry}", person_id) / 2**32 * total
    cumulated = 0.0
    for i, path in enumerate(node.split.paths):
        cumulated += path.weight
        if point < cumulated:
            return i
    return len(node.split.paths) - 1


def wait_until(node: WaitStep, now: datetime, zone_name: str | None) -> datetime:
    """When a wait ends: ``now`` plus its duration, or the next ``until`` local time in the
    person's zone (strictly after ``now``), naive UTC."""
    spec = node.wait
    if spec.until is None:
        return now + timedelta(seconds=spec.seconds)
    zone = zone_named(zone_name) or ZoneInfo(DEFAULT_ZONE)
    hour, minute = (int(x) for x in spec.until.split(":"))
    local = now.replace(tzinfo=UTC).astimezone(zone)
    target = datetime.combine(local.date(), time(hour, minute), tzinfo=zone)
    if target <= local:
        target = datetime.combine(local.date() + timedelta(days=1), time(hour, minute), tzinfo=zone)
    return target.astimezone(UTC).replace(tzinfo=None)
