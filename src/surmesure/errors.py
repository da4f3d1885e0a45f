"""One exception tree. Each error carries an HTTP status, a stable code and a hint to fix it."""

from __future__ import annotations


class SurmesureError(Exception):
    """Base of every error a user can cause. Never shown with a stack trace."""

    http_status: int = 500
    code: str = "internal"

    def __init__(self, message: str, *, hint: str | None = None, field: str | None = None):
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.field = field

    def to_dict(self) -> dict[str, str]:
        body = {"code": self.code, "message": self.message}
        if self.field:
            body["field"] = self.field
        if self.hint:
            body["hint"] = self.hint
        return body

    def __str__(self) -> str:
        return self.message if not self.hint else f"{self.message} ({self.hint})"


class InvalidInput(SurmesureError):
    http_status = 400
    code = "invalid_input"


class Unauthorized(SurmesureError):
    http_status = 401
    code = "unauthorized"


class Forbidden(SurmesureError):
    http_status = 403
    code = "forbidden"


class NotFound(SurmesureError):
    http_status = 404
    code = "not_found"


class Conflict(SurmesureError):
    http_status = 409
    code = "conflict"


class PayloadTooLarge(SurmesureError):
    http_status = 413
    code = "payload_too_large"


class TooManyRequests(SurmesureError):
    """Over a rate limit; ``retry_after`` is the number of seconds to wait."""

    http_status = 429
    code = "rate_limited"

    def __init__(self, message: str, *, retry_after: int, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.retry_after = retry_after


class ConfigError(SurmesureError):
    code = "config"


def trace_of(exc: BaseException) -> str:
    """What a log may say of an unexpected error: the type of each exception of the chain and
    where it was raised, without any message. A database driver's message may quote the
    values of the statement or row that failed (PostgreSQL's DETAIL and CONTEXT lines do), and
    no log line may carry a person's data."""
    import traceback

    parts: list[str] = []
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        kind = type(current)
        frames = traceback.format_list(traceback.extract_tb(current.__traceback__))
        parts.append("".join(frames) + f"{kind.__module__}.{kind.__qualname__}\n")
        current = current.__cause__ or current.__context__
    # the innermost cause first, as Python prints a chain
    return "\n(which caused)\n".join(reversed(parts))
