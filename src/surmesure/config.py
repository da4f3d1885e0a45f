"""Typed settings, read once from the environment (prefix ``SURMESURE_``) or a ``.env`` file.

Nested values use ``__`` as the separator, e.g.
``SURMESURE_SOURCE_RELIABILITY__CALL_CENTRE=0.65`` or, as JSON,
``SURMESURE_SOURCE_RELIABILITY='{"crm": 0.95}'``.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_SOURCE_RELIABILITY: dict[str, float] = {
    "crm": 0.9,
    "shop": 0.85,
    "import": 0.8,
    "call_centre": 0.7,
    "survey": 0.7,
    "web": 0.6,
    "email": 0.6,
    "partner": 0.5,
    "inferred": 0.4,
    "derived": 0.9,
}


class Settings(BaseSettings):
    """Everything an operator can set. Every field is documented in the README."""

    model_config = SettingsConfigDict(
        env_prefix="SURMESURE_",
        env_nested_delimiter="__",
        env_file=".env",
        extra="ignore",
    )

    database_url: str = Field(
        default="duckdb:///surmesure.duckdb",
        description="Store URL: duckdb:///path (embedded) or postgresql+psycopg://user@host/db.",
    )
    write_keys: dict[str, str] = Field(
        default_factory=lambda: {"dev-write-key": "web"},
        description="Segment write keys accepted by the collection API, mapped to a source name.",
    )
    source_reliability: dict[str, float] = Field(
        default_factory=lambda: dict(DEFAULT_SOURCE_RELIABILITY),
        description="Base reliability in [0, 1] of each data source.",
    )
    default_reliability: float = Field(
        default=0.5, ge=0, le=1, description="Reliability of a source not listed above."
    )
    trait_half_life_days: float = Field(
        default=730.0, gt=0, description="Days after which a trait's reliability is halved."
    )
    default_country: str = Field(
        default="FR", description="ISO country used to read phone numbers without a prefix."
    )
    max_request_bytes: int = Field(
        default=512 * 1024, description="Largest request body the API accepts (Segment: 500 KB)."
    )
    commit_interval_ms: float = Field(
        default=5.0, ge=0, description="How long the event writer waits to group commits."
    )
    commit_max_events: int = Field(
        default=20_000, gt=0, description="Most events the event writer puts in one commit."
    )
    templates_dir: Path = Field(
        default=Path("templates"),
        description="Folder of content templates (the shipped examples when it does not exist).",
    )
    secret_key: str = Field(
        default="surmesure-dev-secret-change-me",
        description="Secret that signs personal page links; set your own in production.",
    )
    public_url: str = Field(
        default="http://127.0.0.1:8000", description="Base URL of personal page links."
    )
    decision_log_days: int = Field(default=90, gt=0, description="Days /why looks back.")
    serving_refresh_seconds: float = Field(
        default=2.0,
        gt=0,
        description="How often the decision server checks the store for changes to its view.",
    )
    decision_flush_ms: float = Field(
        default=50.0, gt=0, description="Most a decision waits in memory before it is written."
    )
    datasets_dir: Path = Field(
        default=Path("../shared/datasets"), description="Folder of the public datasets."
    )
    template_time_limit_ms: float = Field(
        default=250.0, gt=0, description="Most one template text may take to render."
    )
    template_on_loop_ms: float = Field(
        default=2.0,
        ge=0,
        description="Render time a decision may spend on the API's event loop; a template that "
        "needs more renders in a thread (0: always in a thread).",
    )

    @field_validator("source_reliability")
    @classmethod
    def _reliability_in_range(cls, value: dict[str, float]) -> dict[str, float]:
        for source, reliability in value.items():
            if not 0.0 <= reliability <= 1.0:
                raise ValueError(
                    f"source_reliability[{source!r}] is {reliability}; use a number in [0, 1]"
                )
        return {k.lower(): v for k, v in value.items()}

    def reliability_of(self, source: str) -> float:
        """Base reliability of ``source``, or ``default_reliability`` when it is not listed."""
        return self.source_reliability.get(source.lower(), self.default_reliability)


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
