"""Typed settings, read once from the environment (prefix ``SURMESURE_``) or a ``.env`` file.

Nested values use ``__`` as the separator, e.g.
``SURMESURE_SOURCE_RELIABILITY__CALL_CENTRE=0.65`` or, as JSON,
``SURMESURE_SOURCE_RELIABILITY='{"crm": 0.95}'``.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal

from pydantic import AfterValidator, BeforeValidator, Field
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from surmesure import config_parsing as parsing
from surmesure.ops.schedule import DEFAULT_SCHEDULE

DEV_SECRET_KEY = "surmesure-dev-secret-change-me"
DEV_WRITE_KEY = "dev-write-key"
DEV_SUPPRESSION_KEY = "surmesure-dev-suppression-key-change-me"
DEV_ENCRYPTION_KEY = "surmesure-dev-encryption-key-change-me"
#: traits that name, reach or single out a person directly (sealed at rest by default)
SEALED_TRAITS = (
    "first_name",
    "last_name",
    "name",
    "full_name",
    "email",
    "phone",
    "mobile",
    "street",
    "address",
    "birth_date",
    "birthday",
)

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

Trust = Literal["trusted", "low"]
UNSUBSCRIBE_MAX_DAYS = 3660
"""Longest lifetime of an unsubscribe link; a link is read up to it whatever the setting is
now (:mod:`surmesure.deliver.unsubscribe`)."""

#: Whom identity resolution believes. A trusted source's record links every identifier it
#: names (its people are merged as the record says); a low-trust source (a public web page, an
#: e-mail reply) only *claims* its identifiers: see :mod:`surmesure.unify.trust`.
DEFAULT_SOURCE_TRUST: dict[str, Trust] = {
    "crm": "trusted",
    "shop": "trusted",
    "import": "trusted",
    "call_centre": "trusted",
    "orders": "trusted",
    "survey": "trusted",
    "partner": "trusted",
    "web": "low",
    "email": "low",
    "app": "low",
}

DEFAULT_CONSENT_CATEGORIES: dict[str, list[str]] = {
    "advertising": ["marketing:web"],
    "targeting": ["marketing:web"],
    "marketingandanalytics": ["marketing:web", "analytics:any"],
    "analytics": ["analytics:any"],
    "performance": ["analytics:any"],
    "functional": ["personalization:web"],
    "personalization": ["personalization:any"],
    "profiling": ["profiling:any"],
    "email": ["marketing:email"],
    "sms": ["marketing:sms"],
}
"""Segment consent category (lowercase) -> the ``purpose:channel`` pairs it covers."""

DEFAULT_PREFERENCE_TOPICS: dict[str, dict[str, str]] = {
    "offers": {"fr": "Offres et promotions", "en": "Offers and promotions"},
    "news": {"fr": "Actualités", "en": "News"},
    "events": {"fr": "Événements en magasin", "en": "In-store events"},
    "new_products": {"fr": "Nouveautés", "en": "New products"},
}
"""Topic name -> its label in French and English, as the preference centre shows it."""


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
        default_factory=lambda: {DEV_WRITE_KEY: "web"},
        description="Segment write keys (scope collect only), each mapped to a source name.",
    )
    source_reliability: Annotated[dict[str, float], AfterValidator(parsing.source_reliability)] = (
        Field(
            default_factory=lambda: dict(DEFAULT_SOURCE_RELIABILITY),
            description="Base reliability in [0, 1] of each data source.",
        )
    )
    default_reliability: float = Field(
        default=0.5, ge=0, le=1, description="Reliability of a source not listed above."
    )
    trait_half_life_days: float = Field(
        default=730.0, gt=0, description="Days after which a trait's reliability is halved."
    )
    metric_half_life_days: float = Field(
        default=60.0,
        gt=0,
        description="Days after which a derived metric's reliability in templates is halved "
        "(a metric is exact when computed, then ages like a trait).",
    )
    clv_tiers: dict[str, float] = Field(
        default_factory=lambda: {"gold": 1000.0, "silver": 300.0, "bronze": 0.0},
        description="CLV tiers for templates: each tier's lowest expected value (currency "
        "units over the CLV horizon); a person takes the highest tier they reach.",
    )
    spark_master: str = Field(
        default="local",
        min_length=1,
        description="The Spark master `segment --engine spark` runs on: local (one thread in "
        "the process), local[N], or a cluster's URL (spark://host:7077, yarn), whose workers "
        "must read the Parquet folder the store's tables are written to (SURMESURE_SPARK_DIR).",
    )
    spark_dir: Path | None = Field(
        default=None,
        description="Where `segment --engine spark` writes the store's tables as Parquet for "
        "Spark to read (default: a temporary folder, removed after): a folder every Spark "
        "worker reads (a shared mount) when the master is a cluster.",
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
    commit_every_ms: float = Field(
        default=25.0,
        ge=0,
        description="Shortest time between the starts of two commits of the event writer: "
        "single-event calls arriving meanwhile share one commit.",
    )
    commit_max_events: int = Field(
        default=20_000, gt=0, description="Most events the event writer puts in one commit."
    )
    templates_dir: Path = Field(
        default=Path("templates"),
        description="Folder of content templates (the shipped examples when it does not exist).",
    )
    secret_key: str = Field(
        default=DEV_SECRET_KEY,
        description="Secret that signs personal page links; set your own in production.",
    )
    public_url: str = Field(
        default="http://127.0.0.1:8000", description="Base URL of personal page links."
    )
    decision_log_days: int = Field(default=90, gt=0, le=36_500, description="Days /why looks back.")
    serving_refresh_seconds: float = Field(
        default=60.0,
        gt=0,
        description="How often the decision server checks the whole store for changes its "
        "dispatcher did not announce (then re-reads the people it keeps); the announced ones "
        "reach it at once.",
    )
    recommend_ranker: bool = Field(
        default=True,
        description="Whether the recommendation model fitted by `recommend --fit` trains the "
        "learned ranker, and whether a kept model's ranker ranks (ahead of the best peer by "
        "7-16% on Online Retail II, against 4-16% without it); 0 turns it off.",
    )
    recommend_workers: int = Field(
        default=0,
        ge=0,
        le=256,
        description="Processes that rank everyone's recommendations side by side "
        "(`recommend --all`); 0: one per processor this process may use, from 20,000 people.",
    )
    serving_cache_people: int = Field(
        default=100_000,
        gt=0,
        description="Most people the decision server keeps in memory (the least recently "
        "decided for are dropped, then read again in one statement when next asked for).",
    )
    serving_packed_people: int = Field(
        default=5_000_000,
        ge=0,
        description="Most people the decision server keeps in memory packed, past "
        "serving_cache_people: everyone is read at start, some 300 bytes a person (300 MB "
        "for a million), so that no decision reads the store; 0 reads the others on a miss.",
    )
    serving_cache_url: str | None = Field(
        default=None,
        pattern=r"^rediss?://",
        description="Redis (redis://127.0.0.1:6379/0) through which the API workers of one "
        "store tell each other whom to re-read (each change is delivered to one worker only), "
        "share the people they read, sealed (see serving_cache_ttl_seconds), and count each "
        "client address's requests on the routes without a key.",
    )
    serving_cache_ttl_seconds: int = Field(
        default=900,
        ge=0,
        description="With serving_cache_url: how long a person one API worker read from the "
        "store stays in Redis for the others (sealed under the person's key, taken out by "
        "their changes and their erasure); 0 shares the news of changes alone.",
    )
    decision_flush_ms: float = Field(
        default=250.0,
        gt=0,
        description=(
            "Most a decision waits in memory before it is written to the decision log. The "
            "server serving it knows it at once; a write costs about as much for 10 decisions "
            "as for 200, so fewer, larger writes leave more of the machine to decisions."
        ),
    )
    journey_period_seconds: float = Field(
        default=5.0,
        ge=0,
        description="Seconds between two rounds of the journey worker a server runs (timers, "
        "scheduled entries, sends); 0: none (run `surmesure journey worker` instead).",
    )
    dispatch: Annotated[str, AfterValidator(parsing.dispatch)] = Field(
        default=parsing.INLINE,
        description="Where changes go once stored: inline (the process that stored them hands "
        "them on) or a NATS server, nats://host:4222, whose JetStream stream the workers of "
        "`surmesure dispatch run` share.",
    )

    dispatch_stream: str = Field(
        default="SURMESURE_CHANGES",
        pattern=r"^[A-Za-z0-9_-]{1,64}$",
        description="The JetStream stream changes go through when dispatch names a NATS server.",
    )

    datasets_dir: Path = Field(
        default=Path("../shared/datasets"), description="Folder of the public datasets."
    )
    suppression_key: str = Field(
        default=DEV_SUPPRESSION_KEY,
        min_length=16,
        description="Secret keying the hashes of erased identifiers (the suppression list); "
        "set your own in production and keep it: a new key forgets who was erased.",
    )
    encryption_key: str = Field(
        default=DEV_ENCRYPTION_KEY,
        min_length=16,
        description="Secret the per-person data keys are wrapped under and the blind index is "
        "keyed with; set your own in production.",
    )
    sealed_traits: frozenset[str] = Field(
        default=frozenset(SEALED_TRAITS),
        description="Traits whose values are direct identifiers, kept sealed at rest under the "
        "person's data key (erasure shreds them): segments may test that one is set, not "
        "compare its value.",
    )
    data_key_cache: int = Field(
        default=100_000,
        ge=1,
        description="Data keys of people a process keeps unwrapped in memory, the most "
        "recently used (about 200 bytes each); past it, a key is read again by primary key.",
    )

    console_session_hours: float = Field(
        default=12.0,
        gt=0,
        le=24 * 30,
        description="How long a console session lasts after signing in, in hours.",
    )
    dev_mode: bool = Field(
        default=False,
        description="Development mode: the server starts with the development secret and keys.",
    )
    rate_limits: Annotated[dict[str, str], AfterValidator(parsing.rate_limits)] = Field(
        default_factory=lambda: {
            "collect": "1000/second",
            "decide": "3000/second",
            "web": "1000/second",
        },
        description="Requests per API key and scope, e.g. {'decide': '500/second'}.",
    )
    client_rate_limits: Annotated[dict[str, str], AfterValidator(parsing.client_rate_limits)] = (
        Field(
            default_factory=lambda: {
                "pages": "20/second",
                "links": "100/second",
                "gateways": "1000/second",
            },
            description="Requests per client address on the routes that take no key, by group: "
            "pages (/p/, /preferences/, /u/, /v/), links (/t/: mail providers' image proxies "
            "and link scanners fetch from a few addresses; a video page's film and events), "
            "gateways (/v1/sms/, /v1/email/feedback: one gateway sends every report); a group "
            "left out is not limited.",
        )
    )
    trusted_proxies: Annotated[list[str], AfterValidator(parsing.trusted_proxies)] = Field(
        default_factory=list,
        description="Proxies (addresses or networks, e.g. 10.0.0.0/8) whose X-Forwarded-For "
        "names the client; from any other peer the header is ignored.",
    )
    client_limit_memory: int = Field(
        default=100_000,
        ge=100,
        description="Most client addresses a server process counts at once (the least "
        "recently seen are forgotten first).",
    )

    web_visitor_rate_limit: Annotated[str, AfterValidator(parsing.one_limit)] = Field(
        default="10/second",
        description="Calls one visitor of a web page may make to /v1/web/, counted by their "
        "signed identity, beside the key's own limit.",
    )
    web_new_visitor_rate_limit: Annotated[str, AfterValidator(parsing.one_limit)] = Field(
        default="100/second",
        description="Calls to /v1/web/ without a valid identity yet (each is given a new one), "
        "counted by client address (see trusted_proxies: behind a proxy, every visitor would "
        "otherwise share its address).",
    )
    web_cookie_days: int = Field(
        default=395,
        ge=1,
        le=395,
        description="Days the web script's anonymous id cookie (sm_aid) lasts in the visitor's "
        "browser: at most 13 months, as the CNIL allows an audience cookie.",
    )
    shop_dir: Path | None = Field(
        default=None,
        description="Folder of a demo shop's pages, served at /shop/ (`surmesure demo` writes "
        "demo/shop); unset: in development mode, demo/shop when it exists, else no /shop/.",
    )

    key_refresh_seconds: float = Field(
        default=2.0, gt=0, description="How often a server reads the stored API keys again."
    )
    page_link_max_days: int = Field(
        default=90, gt=0, le=3660, description="Longest lifetime of a personal page link."
    )
    tracking_token_days: int = Field(
        default=365,
        gt=0,
        le=3660,
        description="Days an e-mail's open pixel and tracked links record opens and clicks after "
        "the message was made; an older link still leads to its target, recording nothing.",
    )
    unsubscribe_link_days: int = Field(
        default=730,
        ge=30,
        le=UNSUBSCRIBE_MAX_DAYS,
        description="Days an unsubscribe link works after the message was made: at least 30 "
        "(CAN-SPAM: an opt-out must work 30 days after sending); people unsubscribe from old "
        "mail found in their inbox, and the spam button is all an expired link leaves them.",
    )
    shop_url: str | None = Field(
        default=None,
        description="The shop a personal page's button leads to (through a tracked link); "
        "unset: no button.",
    )
    product_url: str | None = Field(
        default=None,
        description="A product's page, {product_code} filled in (https://shop.example/p/"
        "{product_code}); unset: a page's products are not links.",
    )

    retention_days: Annotated[dict[str, int], AfterValidator(parsing.retention_days)] = Field(
        default_factory=lambda: {
            "events": 1095,
            "decisions": 365,
            "quarantine": 90,
            "audit": 1825,
            "videos": 30,
        },
        description="Days each kind of record is kept (events, decisions, quarantine, audit; "
        "videos: a cached scene clip after its last use); 0 keeps it for ever. Films whose "
        "links have expired, or that no campaign records, are removed whatever it says.",
    )

    def development_defaults(self) -> list[str]:
        """The settings still at their published development values, by environment name:
        a server refuses to start with any of them outside development mode."""
        found = []
        if self.secret_key == DEV_SECRET_KEY:
            found.append("SURMESURE_SECRET_KEY")
        if DEV_WRITE_KEY in self.write_keys:
            found.append("SURMESURE_WRITE_KEYS")
        if self.suppression_key == DEV_SUPPRESSION_KEY:
            found.append("SURMESURE_SUPPRESSION_KEY")
        if self.encryption_key == DEV_ENCRYPTION_KEY:
            found.append("SURMESURE_ENCRYPTION_KEY")
        return found

    source_trust: Annotated[dict[str, Trust], AfterValidator(parsing.lower_keys)] = Field(
        default_factory=lambda: dict(DEFAULT_SOURCE_TRUST),
        description="Identity trust of each source: trusted (its identifiers link people) or "
        "low (its identifiers are claims until trusted evidence confirms them).",
    )
    default_source_trust: Trust = Field(
        default="low", description="Identity trust of a source not listed in source_trust."
    )
    identity_secret: str | None = Field(
        default=None,
        description="Secret of identity verification: a userId (e-mail) sent with "
        "HMAC-SHA256(secret, userId) as userHash (emailHash) counts as verified.",
    )

    template_time_limit_ms: float = Field(
        default=250.0, gt=0, description="Most one template text may take to render."
    )
    template_on_loop_ms: float = Field(
        default=20.0,
        ge=0,
        description="Render time a decision may spend on the API's event loop; a template that "
        "needs more renders in a thread (0: always in a thread).",
    )

    def reliability_of(self, source: str) -> float:
        """Base reliability of ``source``, or ``default_reliability`` when it is not listed."""
        return self.source_reliability.get(source.lower(), self.default_reliability)

    consent_categories: Annotated[
        dict[str, list[str]], AfterValidator(parsing.consent_categories)
    ] = Field(
        default_factory=lambda: {k: list(v) for k, v in DEFAULT_CONSENT_CATEGORIES.items()},
        description=(
            "Segment consent categories (context.consent.categoryPreferences) -> the "
            "purpose:channel pairs each covers."
        ),
    )

    def trusts(self, source: str) -> bool:
        """Whether identity resolution believes the identifiers ``source`` names."""
        return self.source_trust.get(source.lower(), self.default_source_trust) == "trusted"

    preference_topics: Annotated[
        dict[str, dict[str, str]], AfterValidator(parsing.preference_topics)
    ] = Field(
        default_factory=lambda: {k: dict(v) for k, v in DEFAULT_PREFERENCE_TOPICS.items()},
        description=(
            "Topics a person may leave in the preference centre: name -> label per language "
            "(fr, en). A template or an offer block names one in its 'topic'."
        ),
    )
    preference_pause_max_days: int = Field(
        default=183, gt=0, le=366, description="Longest pause of marketing a person may choose."
    )
    outbox_dir: Path = Field(
        default=Path(".surmesure/outbox"),
        description="Folder of the outbox's send journals (what left before a crash).",
    )
    video_dir: Path = Field(
        default=Path(".surmesure/videos"),
        description="Folder of personalized videos: each film and each scene clip named by "
        "the hash of its content, so identical ones are made once.",
    )
    video_pictures_dir: Path | None = Field(
        default=None,
        description="Folder of product pictures a video's product cards show, named by product "
        "code (P42.jpg, .jpeg, .png or .webp); a product without one gets a drawn card.",
    )
    video_workers: int = Field(
        default=2,
        ge=1,
        le=64,
        description="Scene clips and films a video render makes at once (each an ffmpeg process).",
    )
    recommend_models_kept: int = Field(
        default=3,
        ge=0,
        description="Recommendation models kept in the store: fitting one more removes the "
        "oldest fitted beyond this many (each holds every fitted person's taste factors); 0 "
        "keeps them all.",
    )
    send_workers: int = Field(
        default=1,
        ge=1,
        le=64,
        description="Processes that render and hand over the messages of a campaign (`campaign "
        "send --workers`, the API's send) or of the journeys, beside the one that reads and "
        "records them; 1: that one alone.",
    )
    email_url: str | None = Field(
        default=None,
        description="SMTP server of the e-mail channel: smtp://user:password@host:587?starttls=1",
    )
    sms_url: str | None = Field(
        default=None,
        description="Kannel smsbox of the SMS channel: kannel://user:password@host:13013?sender=SHOP",
    )
    paper_url: str | None = Field(
        default=None,
        description="Folder of the paper channel's print batches: paper:///var/spool/print",
    )
    calls_url: str | None = Field(
        default=None,
        description="Folder of the call centre's call lists (campaign channel phone): "
        "calls:///var/spool/calls",
    )
    complaint_quiet_hours: int = Field(
        default=72,
        ge=0,
        le=24 * 365,
        description="Hours after a complaint during which a person gets no marketing message "
        "on any channel.",
    )

    rates: Annotated[
        dict[str, float],
        NoDecode,
        BeforeValidator(parsing.rates_text),
        AfterValidator(parsing.rates),
    ] = Field(
        default_factory=dict,
        description="Exchange rates of orders collected as Order Completed events in another "
        "currency than the store's: CUR=RATE separated by commas, one unit of CUR in the "
        "store's currency (e.g. GBP=1.17,USD=0.92); an order in a currency without a rate is "
        "kept in the quarantine until one is set.",
    )

    schedule: Annotated[
        dict[str, str],
        NoDecode,
        BeforeValidator(parsing.schedule_text),
        AfterValidator(parsing.schedule),
    ] = Field(
        default_factory=lambda: dict(DEFAULT_SCHEDULE),
        description="Jobs the server runs by itself: derive, segment_refresh, retention -> "
        "'every 15m' (s, m, h, d), 'daily 03:00' (UTC) or 'off'; a job not named does not "
        "run, and {} or off runs none.",
    )


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
