"""What every channel's settings share: read from a URL, refused with the field to fix."""

from __future__ import annotations

from typing import TypeVar
from urllib.parse import SplitResult, parse_qs, urlsplit

from pydantic import BaseModel, ValidationError

from surmesure.errors import ConfigError

S = TypeVar("S", bound=BaseModel)


def split(url: str, schemes: tuple[str, ...], section: str, example: str) -> SplitResult:
    """The parts of ``url``; :class:`ConfigError` when its scheme is not one of ``schemes``."""
    parts = urlsplit(url)
    if parts.scheme not in schemes:
        raise ConfigError(
            f"The {section} URL's scheme {parts.scheme!r} is not {' or '.join(schemes)}.",
            field=f"{section}.url",
            hint=f"write {example}",
        )
    return parts


def validated(
    model: type[S], values: dict[str, object], query: str, extra: dict[str, object], section: str
) -> S:
    """``model`` from ``values``, then the URL's query options, then ``extra``; the first
    error is a :class:`ConfigError` naming ``section.field`` (``section`` alone for a rule
    across fields)."""
    for key, found in parse_qs(query).items():
        values[key] = found[-1]
    values.update(extra)
    try:
        return model.model_validate(values)
    except ValidationError as exc:
        first = exc.errors()[0]
        name = ".".join(str(x) for x in first["loc"])
        raise ConfigError(
            f"{section} setting {name or '(several)'!r}: {first['msg']}.",
            field=f"{section}.{name}" if name else section,
            hint=f"see the options of surmesure.deliver.{section}",
        ) from None
