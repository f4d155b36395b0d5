"""Settings: the one place that reads the environment (house rule 6).

Built once by each entrypoint (CLI command, test fixture) and passed down.
"""

from __future__ import annotations

import ipaddress
import json
import secrets
from pathlib import Path
from typing import Annotated, Literal

from pydantic import AliasChoices, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict


class TrustedProxies(list[str]):
    """Addresses and CIDR ranges; `address in proxies` matches an address inside any of them."""

    def __init__(self, entries: list[str]) -> None:
        super().__init__(entries)
        self._networks = [ipaddress.ip_network(entry, strict=False) for entry in entries]

    def __contains__(self, item: object) -> bool:
        try:
            address = ipaddress.ip_address(str(item))
        except ValueError:
            return False
        return any(address.version == net.version and address in net for net in self._networks)


class Settings(BaseSettings):
    # The environment, and a `.env` file in the working directory when there is one (the
    # environment wins). `.env.example` lists every setting with its default.
    model_config = SettingsConfigDict(env_prefix="BOXOFFICE_", extra="ignore", env_file=".env")

    # Where the embedded backends keep their data, and where generated secrets live.
    data_dir: Path = Path(".boxoffice")
    # PostgreSQL and Redis (`redis://`, `rediss://`, `unix://`, any node of a Redis Cluster or
    # `redis+cluster://host:port`); unset: started embedded from the wheels (the `embedded` extra).
    database_url: str | None = None
    redis_url: str | None = None

    # Where the API (and the web app) listens.
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=0, le=65535)
    # The gRPC TicketService (`boxoffice up` serves it beside HTTP; `boxoffice grpc` alone).
    grpc_port: int = Field(default=50051, ge=0, le=65535)
    api_workers: int = Field(default=1, ge=1, le=64)  # API processes `up` runs (sharing the port)
    # Which parts of the API this process serves (comma-separated, see app.ROLES), and which
    # background jobs `boxoffice worker` runs (comma-separated job names; empty = all).
    roles: str = "all"
    jobs: str = ""
    # serve/worker apply migrations first; off where a supervisor migrated once for all its
    # processes (concurrent upgrades race on PostgreSQL's catalog).
    migrate_on_start: bool = True
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"  # DEBUG, INFO, WARNING or ERROR
    # auto: a readable console renderer when stderr is a terminal, JSON (ECS fields) otherwise.
    log_format: Literal["auto", "console", "json"] = "auto"
    log_json: bool | None = None  # older switch: true = json, false = console (wins over log_format)
    access_log: bool = True  # one JSON line per request (not for /metrics and /healthz)
    # prod (the default: a deployment that forgets to say is a real sale): top-ups are off and no
    # demo fan is seeded. dev (what `boxoffice up` runs unless told otherwise) and test (the
    # suite's): free top-ups and the demo fan, for trying the product out.
    environment: Literal["dev", "test", "prod"] = "prod"

    # HTTP limits (http/server.py, http/guard.py): bodies, request heads, slow or idle clients.
    max_body_bytes: int = Field(default=64 * 1024, ge=1024)
    max_header_bytes: int = Field(default=16 * 1024, ge=1024)
    max_header_count: int = Field(default=100, ge=10)
    keep_alive_timeout_seconds: float = Field(default=5, gt=0)
    request_read_timeout_seconds: float = Field(default=15, gt=0)

    # Rate limits (per minute; 0 = off): per user on the write paths. Logins count FAILURES only
    # (per address, and per account+address, in 15-minute windows): a crowd behind one NAT that
    # types its passwords right is never refused, and failed logins never lock an account: the
    # owner, from any other address, still gets in. Password hashing (argon2) is bounded per
    # process (argon2_concurrency, argon2_max_waiting) for floods.
    limit_joins_per_minute: int = Field(default=30, ge=0)
    limit_holds_per_minute: int = Field(default=60, ge=0)
    limit_payments_per_minute: int = Field(default=30, ge=0)
    limit_topups_per_minute: int = Field(default=10, ge=0)
    limit_failed_logins_per_address: int = Field(default=100, ge=0)  # per 15 minutes; 0 = off
    limit_failed_logins_per_account_and_address: int = Field(default=5, ge=1)  # per 15 minutes
    limit_signups_per_address_per_hour: int = Field(default=20, ge=0)  # 0 = off
    max_balance: int = Field(default=100_000_000, ge=1)  # a top-up may not take a balance past this
    # Live SSE streams (seat map, queue position) per user and per API process. They hold no Redis
    # connection of their own (seat streams share one read per show per process: redis/streams.py).
    max_streams_per_user: int = Field(default=4, ge=1)
    max_streams_per_process: int = Field(default=32, ge=1)
    # Password hashing (argon2) per process: hashes at once, and logins waiting (then 429 LOGIN_BUSY).
    argon2_concurrency: int = Field(default=1, ge=1)
    argon2_max_waiting: int = Field(default=32, ge=0)
    # argon2id cost (RFC 9106 low-memory profile by default: ~100 ms a hash on one core). Stored
    # hashes with other parameters are rehashed at their next successful login.
    argon2_time_cost: int = Field(default=3, ge=1)
    argon2_memory_kib: int = Field(default=64 * 1024, ge=8)
    argon2_parallelism: int = Field(default=4, ge=1)
    # Client addresses: X-Forwarded-For is believed only from these peers (the gateway).
    # Addresses or CIDR ranges, comma-separated (`10.0.0.1,10.1.0.0/16`) or a JSON list.
    trusted_proxies: Annotated[list[str], NoDecode] = TrustedProxies(["127.0.0.1", "::1"])

    # Connection pools per process (PostgreSQL pool + overflow, Redis).
    db_pool_size: int = Field(default=20, ge=1)
    db_pool_overflow: int = Field(default=10, ge=0)
    redis_pool_size: int = Field(default=64, ge=1)

    # Secrets: when not set they are generated once and stored in data_dir/secrets.json.
    jwt_secret: SecretStr | None = None
    queue_token_secret: SecretStr | None = None
    # /metrics: open to direct loopback clients (a local Prometheus, the bench); from anywhere
    # else (or through a proxy, which adds X-Forwarded-For) only with `Authorization: Bearer <token>`.
    metrics_token: SecretStr | None = None
    # Ed25519 ticket signing keys (comma-separated secrets, newest first: it signs, all verify);
    # unset -> generated into data_dir/secrets.json (see tickets/keys.py; rotate-ticket-key).
    ticket_signing_keys: SecretStr | None = None
    # /metrics of a process that has no HTTP port of its own (`boxoffice worker`, `boxoffice grpc`
    # run alone): served on this port of BOXOFFICE_HOST when set (unset: none).
    metrics_port: int | None = Field(default=None, ge=0, le=65535)
    # Processes that share one port keep their metrics in one directory, so any of them reports
    # all (set by `up` and `serve --workers N` for their children; not an operator setting).
    metrics_dir: Path | None = None
    # Access tokens: signing algorithm and lifetimes (refresh tokens rotate on use).
    jwt_algorithm: Literal["HS256", "HS384", "HS512"] = "HS256"
    access_token_ttl_seconds: int = Field(default=15 * 60, ge=30)
    refresh_token_ttl_seconds: int = Field(default=7 * 24 * 3600, ge=60)

    # The admin account the demo seeding creates; its password, unset, is generated on the first
    # start, kept in data_dir/secrets.json and shown once by `up`.
    admin_email: str = "admin@boxoffice.local"
    admin_password: SecretStr | None = None
    # The demo fan the seeding creates (balance in minor units of won, which has none: ₩5,000,000).
    demo_fan_email: str = "fan@boxoffice.local"
    demo_fan_password: SecretStr = SecretStr("fan-password")
    demo_fan_balance: int = 5_000_000
    # The demo's gate staff (role DOOR): the scanner page /door/{show}.
    demo_door_email: str = "door@boxoffice.local"
    demo_door_password: SecretStr = SecretStr("door-password")

    # SMTP for email verification; off when smtp_host is unset.
    smtp_host: str | None = None
    smtp_port: int = 25
    smtp_user: str | None = None
    smtp_password: SecretStr | None = None
    smtp_from: str = "boxoffice@localhost"
    smtp_starttls: bool = False
    public_base_url: str = "http://127.0.0.1:8000"

    # The language of pages, mails and problem details when the reader chose none and their
    # Accept-Language names neither supported one: "ko" or "en". Browsers always send
    # Accept-Language, so this mostly answers programs (curl, API clients): English by default;
    # a deployment whose readers' devices are set to other languages may pick "ko".
    default_locale: Literal["ko", "en"] = "en"

    # How long a hold lasts when the show sets no hold time of its own.
    default_hold_seconds: int = Field(default=300, ge=5, le=3600)
    # Seats a fan's hold let go of (cancelled, expired, refunded) are back on sale for everyone
    # else at once, and for that fan only after this long (0 = off).
    rehold_cooldown_seconds: int = Field(default=300, ge=0, le=86_400)

    # Payment provider (the simulator is started by `boxoffice up` when this is unset).
    payment_provider_url: str | None = None
    payment_provider_port: int = Field(default=8090, ge=0, le=65535)
    payment_provider_timeout_seconds: float = 2.0

    # Overload shedding: waiting-room requests (join, status, queue stream) get 429 + Retry-After
    # while this process's event loop lags more than this (holds, payments, seat maps never).
    # The share shed grows from 0 at the threshold to 90% at twice it; 0 turns shedding off.
    shed_loop_lag_ms: float = Field(default=30.0, ge=0)
    shed_retry_after_seconds: int = Field(default=2, ge=1, le=60)
    # Buyers first on every event loop: the waiting room's requests (join, status, queue stream)
    # enter the app at most this many per loop pass, behind the buyers' ready work (http/shedding.py
    # CrowdLane); 0 lets them run in arrival order with everything else. 2 rather than 8 halved
    # the buyers' p99 in the default sale for ~10% more on a poll's p99 (docs/benchmarks.md).
    crowd_per_pass: int = Field(default=2, ge=0, le=10_000)
    # Buyers first between processes: `boxoffice up --roles` runs the queue role (the waiting
    # room's crowd) at this scheduling niceness, so the buyers' roles and the databases on the
    # same machine take a core first (ops.gateway.yield_cpu). 0 = as started. In saturated sales
    # behind the gateway, 10 took the winning holds' p99 from 278 ms to 120 ms (medians of 3).
    queue_nice: int = Field(default=10, ge=0, le=19)

    # Adaptive admission: the admission worker steers each show's admission rate (a slow start
    # from 25/s, then AIMD, within the show's configured rate and cap) so that the buyers' p99
    # (holds, payments, measured by every API process) stays under this many ms. 0 = off: every
    # show admits at its static rate. A show whose queue settings say `adaptive: false` admits at
    # its static rate whatever this says.
    buyer_p99_target_ms: float = Field(default=100.0, ge=0, le=60_000)

    # Tracing (kit/trace.py; the exporter needs `pip install boxoffice[otel]`): off by default.
    # On with BOXOFFICE_TRACING=otlp or the standard OTEL_TRACES_EXPORTER=otlp; spans go over
    # OTLP/HTTP to OTEL_EXPORTER_OTLP_TRACES_ENDPOINT, else OTEL_EXPORTER_OTLP_ENDPOINT + /v1/traces,
    # else http://localhost:4318/v1/traces. OTEL_SDK_DISABLED=true wins. The SDK reads its own
    # other OTEL_* variables (sampler, headers, batch sizes).
    tracing: Literal["off", "otlp"] = "off"
    otel_traces_exporter: str | None = Field(
        default=None, validation_alias=AliasChoices("OTEL_TRACES_EXPORTER", "otel_traces_exporter")
    )
    otel_exporter_otlp_endpoint: str | None = Field(
        default=None,
        validation_alias=AliasChoices("OTEL_EXPORTER_OTLP_ENDPOINT", "otel_exporter_otlp_endpoint"),
    )
    otel_exporter_otlp_traces_endpoint: str | None = Field(
        default=None,
        validation_alias=AliasChoices(
            "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "otel_exporter_otlp_traces_endpoint"
        ),
    )
    otel_service_name: str = Field(
        default="boxoffice", validation_alias=AliasChoices("OTEL_SERVICE_NAME", "otel_service_name")
    )
    otel_sdk_disabled: bool = Field(
        default=False, validation_alias=AliasChoices("OTEL_SDK_DISABLED", "otel_sdk_disabled")
    )
    # Sampled requests (`traceparent` flags 01) answer with their wall-clock breakdown in a
    # Server-Timing header (`boxoffice bench flash-sale --trace-sample` turns it on; OTLP not needed).
    trace_breakdown: bool = False

    # Background jobs (worker.py): how often each ticks. worker_tick_seconds is the admission tick.
    worker_tick_seconds: float = Field(default=0.5, gt=0)
    hold_expiry_interval_seconds: float = Field(default=1.0, gt=0)
    inventory_recount_interval_seconds: float = Field(default=0.5, gt=0)
    reconcile_interval_seconds: float = Field(default=5.0, gt=0)
    outbox_relay_interval_seconds: float = Field(default=0.1, gt=0)
    idempotency_purge_interval_seconds: float = Field(default=300.0, gt=0)
    # The mail_sender job (order confirmations, refunds, password resets): how often it looks for
    # due mails, and how many attempts (backing off) before a mail is DEAD (counted on /metrics).
    mail_interval_seconds: float = Field(default=1.0, gt=0)
    mail_max_attempts: int = Field(default=6, ge=1, le=50)
    mail_retry_base_seconds: float = Field(default=5.0, gt=0)
    # A password-reset link is valid this long (and once: it dies with the password it resets).
    password_reset_ttl_seconds: int = Field(default=30 * 60, ge=60, le=24 * 3600)

    @field_validator("database_url", "redis_url", "payment_provider_url", "smtp_host", mode="before")
    @classmethod
    def _blank_is_none(cls, value: object) -> object:
        return None if value == "" else value

    @field_validator("trusted_proxies", mode="before")
    @classmethod
    def _proxies(cls, value: object) -> object:
        if isinstance(value, str):
            text = value.strip()
            value = (
                json.loads(text)
                if text.startswith("[")
                else [v.strip() for v in text.split(",") if v.strip()]
            )
        if not isinstance(value, list):
            raise ValueError("a comma-separated list of addresses or CIDR ranges")
        entries = [str(v) for v in value]
        for entry in entries:
            try:
                ipaddress.ip_network(entry, strict=False)
            except ValueError:
                raise ValueError(f"{entry!r} is not an IP address or CIDR range") from None
        return entries

    @field_validator("trusted_proxies", mode="after")
    @classmethod
    def _proxies_match_ranges(cls, value: list[str]) -> list[str]:
        return TrustedProxies(value)

    @property
    def json_logs(self) -> bool:
        """JSON log lines (else the console renderer): BOXOFFICE_LOG_JSON, else BOXOFFICE_LOG_FORMAT."""
        import sys

        if self.log_json is not None:
            return self.log_json
        if self.log_format == "auto":
            return not sys.stderr.isatty()
        return self.log_format == "json"

    @property
    def otlp_traces_url(self) -> str | None:
        """Where spans go (OTLP/HTTP), or None when export is off."""
        exporters = {e.strip() for e in (self.otel_traces_exporter or "").split(",")}
        if self.otel_sdk_disabled or (self.tracing != "otlp" and "otlp" not in exporters):
            return None
        if self.otel_exporter_otlp_traces_endpoint:
            return self.otel_exporter_otlp_traces_endpoint
        base = (self.otel_exporter_otlp_endpoint or "http://localhost:4318").rstrip("/")
        return f"{base}/v1/traces"

    @property
    def role_list(self) -> list[str]:
        return [r.strip() for r in self.roles.split(",") if r.strip()] or ["all"]

    @property
    def job_list(self) -> list[str]:
        return [j.strip() for j in self.jobs.split(",") if j.strip()]

    @property
    def free_topups(self) -> bool:
        """A top-up credits the balance with no payment behind it: never in production."""
        return self.environment != "prod"

    @property
    def demo_fan(self) -> bool:
        """The demo fan (a known password and a balance) is seeded: never in production."""
        return self.environment != "prod"

    @property
    def embedded_database(self) -> bool:
        return self.database_url is None

    @property
    def embedded_redis(self) -> bool:
        return self.redis_url is None


def data_dir_secrets(data_dir: Path, names: tuple[str, ...]) -> dict[str, str]:
    """The data dir's generated secrets (JWT keys, the embedded backends' passwords, the default
    admin's first password): each generated once, kept in data_dir/secrets.json (0600). A lock
    file makes concurrent first uses (several commands starting at once) agree on one value."""
    import fcntl
    import json
    import os

    data_dir.mkdir(parents=True, exist_ok=True)
    path = data_dir / "secrets.json"
    lock_fd = os.open(data_dir / "secrets.lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(lock_fd, fcntl.LOCK_EX)
        stored: dict[str, str] = json.loads(path.read_text()) if path.exists() else {}
        missing = [name for name in names if name not in stored]
        for name in missing:
            stored[name] = secrets.token_urlsafe(32 if name.endswith("password") else 48)
        if missing:
            tmp = path.with_suffix(".tmp")
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as out:
                out.write(json.dumps(stored))
            tmp.chmod(0o600)
            tmp.replace(path)
        return stored
    finally:
        os.close(lock_fd)


def rotate_data_dir_secret(data_dir: Path, name: str) -> str:
    """Put a freshly generated secret in front of the data dir's comma-separated list `name` (the
    ticket signing keys: the new one signs, the old ones keep verifying); returns the new list."""
    import fcntl
    import json
    import os

    data_dir_secrets(data_dir, (name,))  # exists, so there is something to keep
    path = data_dir / "secrets.json"
    lock_fd = os.open(data_dir / "secrets.lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(lock_fd, fcntl.LOCK_EX)
        stored: dict[str, str] = json.loads(path.read_text())
        stored[name] = ",".join([secrets.token_urlsafe(48), stored[name]])
        tmp = path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(json.dumps(stored))
        tmp.replace(path)
        return stored[name]
    finally:
        os.close(lock_fd)


def with_secrets(settings: Settings) -> Settings:
    """Fill unset secrets from the data dir (generated on first use)."""
    names = ("jwt_secret", "queue_token_secret", "admin_password")
    if all(getattr(settings, name) is not None for name in names):
        return settings
    stored = data_dir_secrets(settings.data_dir, names)
    return settings.model_copy(
        update={name: getattr(settings, name) or SecretStr(stored[name]) for name in names}
    )


def environment_configured() -> bool:
    """Whether the operator chose BOXOFFICE_ENVIRONMENT (`up` runs dev otherwise)."""
    import os

    return bool(os.environ.get("BOXOFFICE_ENVIRONMENT"))


def first_time(data_dir: Path, flag: str) -> bool:
    """True exactly once per data dir and flag (showing the generated admin password, say)."""
    import os

    try:
        os.close(os.open(data_dir / f".{flag}", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    except FileExistsError:
        return False
    return True


def secret(value: SecretStr | None) -> str:
    if value is None:
        raise RuntimeError("secret not configured; build Settings through with_secrets()")
    return value.get_secret_value()
