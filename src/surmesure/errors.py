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
