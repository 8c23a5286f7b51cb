"""The one validated settings object.

Values come, lowest priority first, from the field defaults here, `escr.toml` (the operator's
`config_dir` when it has one, else the default shipped in the package as `escr.config`), and
`ESCR_*` environment variables (nested with `__`, e.g. `ESCR_QC__MIN_DPI_FAIL=150`). The object
is built once at the entry point and passed down; nothing reads the environment elsewhere.
"""

from __future__ import annotations

import os
from importlib.resources import files
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from escr.errors import ConfigError

# The default configuration ships inside the package (config/ in the repository, installed as
# escr.config). An operator's own folder (ESCR_CONFIG_DIR) overrides it file by file.
DEFAULT_CONFIG_DIR = Path(str(files("escr.config")))


def config_file(config_dir: Path, name: str) -> Path:
    """The operator's copy of a configuration file when their folder has one, else the default."""
    own = config_dir / name
    return own if own.exists() else DEFAULT_CONFIG_DIR / name


class PreflightLimits(BaseModel):
    """Bounds beyond which a file is refused rather than decoded."""

    max_file_bytes: int = 2 * 1024**3
    max_pages: int = 2000
    max_page_pixels: int = 150_000_000  # A3 at 600 dpi is 70 Mpx; 35000 x 35000 is 1225 Mpx
    min_page_side_pt: float = 72.0  # one inch
    max_page_side_pt: float = 5000.0  # about 1.75 m, larger than A0


class OcrSettings(BaseModel):
    language: str = "eng"
    max_dpi: int = 300  # oversampled scans are rendered down to this for OCR
    min_dpi: int = 150  # lower-resolution scans are rendered up to this for OCR
    max_render_pixels: int = 40_000_000  # A3 at 300 dpi is 17 Mpx; a larger page renders coarser
    page_timeout_s: int = 300
    workers: int = 0  # 0 = one tesseract process per core
    # "library": Tesseract kept loaded through tesserocr (faster, docs/decisions/0006); "command":
    # the distribution's `tesseract` program started for every read.
    engine: Literal["library", "command"] = "library"
    tessdata_dir: Path | None = None  # the models; by default TESSDATA_PREFIX or the distribution's folder
    detect_orientation: bool = True
    # A first pass scoring below this mean word confidence triggers orientation detection.
    orientation_retry_below_conf: float = 65.0
    # The watcher and workers that OCR run at this niceness (0-19) and, with low_io_priority, in the
    # lowest best-effort I/O class, so the web app answers first while OCR keeps every core busy.
    niceness: int = Field(10, ge=0, le=19)
    low_io_priority: bool = True


class QcThresholds(BaseModel):
    min_dpi_fail: float = 200.0
    min_dpi_warn: float = 300.0
    skew_warn_deg: float = 2.0
    skew_fail_deg: float = 5.0
    too_dark_fraction: float = 0.45  # share of dark pixels above which a page is too dark
    too_light_p1: int = 170  # a non-blank page whose darkest 1 % is lighter than this is too faint
    legibility_warn_conf: float = 70.0
    legibility_fail_conf: float = 40.0
    legibility_min_words: int = 5


class WebSettings(BaseModel):
    """The web app and REST API (`escr serve`)."""

    host: str = "127.0.0.1"
    port: int = 8080
    # Signs session cookies. From ESCR_WEB__SECRET_KEY; when unset a random key is generated
    # once and kept in <home>/web-secret.key (mode 0600). Never put it in a config file.
    secret_key: SecretStr | None = None
    secure_cookies: bool = False  # set true when served over HTTPS (cookies get the Secure flag)
    same_site: Literal["lax", "strict"] = "lax"
    session_hours: float = 8.0  # a sign-in lasts at most this long
    idle_minutes: float = 60.0  # and ends after this long without a request
    # Failed sign-ins are throttled, never locking an account: after this many failures from one
    # address for one user name (or login_client_max_failures from one address in all), each further
    # try from that address waits, twice as long each time from login_backoff_seconds up to
    # login_lockout_minutes. Known and unknown user names are counted and answered alike.
    login_max_failures: int = Field(default=5, ge=1)
    login_client_max_failures: int = Field(default=20, ge=1)
    login_backoff_seconds: float = Field(default=2.0, gt=0)
    login_lockout_minutes: float = Field(default=15.0, gt=0)
    # API tokens expire: a token asked for without a lifetime lasts token_days, none longer than
    # token_max_days.
    token_days: int = Field(default=90, ge=1)
    token_max_days: int = Field(default=366, ge=1)
    # Single sign-on by a reverse proxy: the header naming the signed-in user, trusted only
    # from these proxy addresses (IPs or CIDR ranges). Off when sso_header is unset.
    sso_header: str | None = None
    trusted_proxies: list[str] = Field(default_factory=list)
    break_glass_minutes: float = 60.0  # how long an emergency access to one child lasts
    audit_purpose_minutes: float = 240.0  # how long an auditor's recorded purpose opens content
    # The largest request body read (forms and JSON); a scan uploaded as multipart/form-data may be
    # as large as preflight.max_file_bytes. Larger bodies are refused (413) before they fill memory.
    max_body_kb: int = Field(default=1024, ge=64)
    page_size: int = 50
    max_page_size: int = 200
    # Times on pages are shown in this zone, with its abbreviation (GMT / BST); stored times stay UTC.
    timezone: str = "Europe/London"
    intake_refresh_seconds: int = Field(default=5, ge=1)  # the intake home reloads itself while files are read
    thumbnail_dpi: int = 30
    page_image_dpi: int = 80
    viewer_dpi: int = 150  # the document viewer's page: an A4 page 1240 px wide, sharp at 200 % zoom on a laptop
    discarded_keep_days: int = 365  # a discarded quarantined file is kept at least this long
    # Who may read /healthz, /metrics and the OpenAPI description (/api/v1/openapi.json):
    # "open" anyone, "localhost" only clients on this machine (a request a proxy forwarded, with
    # X-Forwarded-For or the like, is not local), "signed_in" anyone signed in or with an API token.
    # Health stays open for load balancers by default, but strangers see only ok or failing.
    health_access: Literal["open", "localhost", "signed_in"] = "open"
    metrics_access: Literal["open", "localhost", "signed_in"] = "localhost"
    openapi_access: Literal["open", "localhost", "signed_in"] = "signed_in"

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"web.timezone {value!r} is not a time zone name such as Europe/London") from None
        return value


class StoreSettings(BaseModel):
    """The S3 / MinIO object store, used when `store_url` is `s3://<bucket>`."""

    endpoint: str | None = None  # host:port of the S3 service
    region: str = "us-east-1"
    secure: bool = True  # HTTPS; false only for a store on loopback or a test server
    ca_bundle: Path | None = None  # CA certificates for a store with a private certificate
    # Credentials from ESCR_STORE__ACCESS_KEY / ESCR_STORE__SECRET_KEY only; never in a file.
    access_key: SecretStr | None = None
    secret_key: SecretStr | None = None
    lock_mode: Literal["GOVERNANCE", "COMPLIANCE"] = "GOVERNANCE"  # object-lock mode of every retention
    sse: bool = False  # ask the server to encrypt every object (SSE-S3; the server needs a KMS/KEK)
    verify: Literal["read_back", "checksum"] = "read_back"  # read_back: hash every byte read back
    single_put_max_bytes: int = Field(default=512 * 1024**2, ge=5 * 1024**2)  # larger: multipart upload
    # Short and bounded, so an outage becomes a StorageError quickly and the file is deferred.
    connect_timeout_s: float = Field(default=3.0, gt=0)
    read_timeout_s: float = Field(default=30.0, gt=0)
    retries: int = Field(default=2, ge=0)


class AnchorSettings(BaseModel):
    """Anchoring the event chain's head to the object store (`escr anchor`, the watcher)."""

    # Anchors are sealed with HMAC-SHA256. The key is ESCR_ANCHOR__KEY when set, else the file
    # `key_file` (default <home>/keys/anchor.key, kept apart from the database), created with
    # owner-only permissions at the first anchor. `escr fixity` reports a missing key and any
    # unsealed (plain SHA-256) anchor as findings.
    key: SecretStr | None = None
    key_file: Path | None = None
    interval_minutes: float = 5.0  # at most one anchor per interval unless asked for (0: only on demand)
    after_each_batch: bool = True  # and one as soon as a scan has been filed since the last anchor
    prefix: str = "anchors/"


class ProvenanceSettings(BaseModel):
    """Fixity checks, paper disposition and case-file audit (escr fixity / paper / audit)."""

    qa_hold_days: int = 28  # DOMAIN.md step 9: a published UK example; 30-90 days elsewhere
    # Document types whose paper is always kept, on top of `keep_original: true` in doctypes.yaml.
    keep_original_types: list[str] = Field(default_factory=list)
    fixity_interval_hours: float = 24.0  # the watcher runs the fixity pipeline this often (0: never)
    alert_command: list[str] = Field(default_factory=list)  # run per finding, the finding as JSON on stdin
    # Store prefixes that hold objects not referenced by documents (never reported as unreferenced).
    ignore_prefixes: list[str] = Field(default_factory=list)
    chunk_size: int = 500  # rows per read when streaming the record
    casefile_audit_file: str = "casefile_audit.yaml"
    audit_sample_gap_months: int = 12  # seed 004 12.1: a prepared file is not selected again for 12 months


class RecordsSettings(BaseModel):
    """The record as the seeds keep it (issue 19): paper alerts, timeliness, disposal."""

    # Missing or stolen paper: seed 003 says the Director is told at once. The alert command is
    # provenance.alert_command (the incident as JSON on stdin); e-mail goes through this relay.
    smtp_host: str | None = None  # unset: no e-mail
    smtp_port: int = Field(default=25, ge=1, le=65535)
    smtp_starttls: bool = False
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None  # from ESCR_RECORDS__SMTP_PASSWORD only
    smtp_timeout_s: float = Field(default=10.0, gt=0)
    mail_from: str = "escr@localhost"
    alert_recipients: list[str] = Field(default_factory=list)  # e.g. the Director, the records manager
    # Timeliness (seed 001 section 9): paper arrival to verified, in working days of England and Wales.
    target_working_days: int = Field(default=5, ge=1)
    oldest_waiting: int = Field(default=20, ge=1)  # how many of the oldest waiting items a report lists
    certificate_prefix: str = "disposal/"  # where destruction certificates are stored
    unscanned_after_days: int = Field(default=7, ge=0)  # a printed cover sheet not scanned after this is listed
    # Scanner check (DOMAIN protocol step 1): what a scanned test target must measure to pass, and
    # what documents from a device without a passing check that day get in QC.
    scanner_check_qc: Literal["warn", "fail", "off"] = "warn"
    scanner_dpi_tolerance: float = Field(default=0.03, gt=0)  # effective vs declared resolution
    scanner_min_dpi: float = 300.0  # DOMAIN.md: 300 dpi for anything to be OCRed
    scanner_max_skew_deg: float = Field(default=1.0, gt=0)
    scanner_min_white: int = Field(default=200, ge=0, le=255)  # the paper's white: lower is too dark
    scanner_min_tone_steps: int = Field(default=6, ge=0, le=7)  # of the wedge's seven steps
    scanner_max_cer: float = Field(default=0.02, ge=0)  # OCR character error rate on the known text


class CelerySettings(BaseModel):
    """Page OCR fanned out to `escr worker` processes through a broker; none = all in-process."""

    broker_url: str | None = None  # redis://... or amqp://...; unset: OCR runs in this process
    result_backend: str | None = None  # default: the broker URL when it is Redis (required for AMQP)
    queue: str = "escr.ocr"
    pages_in_flight: int = Field(default=64, ge=1)  # pages of one file sent as one group at a time
    wait_timeout_s: float = Field(default=3600.0, gt=0)  # then the file is deferred and retried later
    visibility_timeout_s: int = Field(default=1800, ge=1)  # Redis: a dead worker's page is redone after this
    max_attempts: int = Field(default=3, ge=1)  # deliveries of one page before it counts as failed
    max_page_message_bytes: int = Field(default=32 * 1024**2, ge=1024)  # larger pages are OCRed locally
    result_expires_s: int = Field(default=3600, ge=60)  # backstop: results are deleted once collected
    worker_concurrency: int = Field(default=0, ge=0)  # pages at once per worker; 0 = one per core

    @model_validator(mode="after")
    def _backend_for_amqp(self) -> CelerySettings:
        """Results travel back through Redis: an AMQP broker alone cannot hold them."""
        if self.broker_url and not self.broker_url.startswith(("redis://", "rediss://")) and not self.result_backend:
            raise ValueError("an AMQP broker needs a result backend: set ESCR_CELERY__RESULT_BACKEND (redis://...)")
        return self


class MetricsSettings(BaseModel):
    """Prometheus metrics of the watcher and of each worker, served on their own port."""

    port: int | None = None  # unset: no metrics server
    address: str = "127.0.0.1"


DEFAULT_EXEMPTIONS = {
    "third_party": "Third-party personal data",
    "serious_harm": "Serious harm to the physical or mental health of any person",
    "legal_privilege": "Legal professional privilege",
    "crime": "Crime and taxation",
    "court_proceedings": "Court proceedings and reports to the court",
    "adoption": "Adoption records and reports",
    "confidential_reference": "Confidential references",
    "not_in_scope": "Outside the scope of the request",
}


class DisclosureSettings(BaseModel):
    """Subject access and disclosure (escr.app.disclosure)."""

    # The exemption reasons a redaction may give: code -> the words on the schedule.
    exemptions: dict[str, str] = Field(default_factory=lambda: dict(DEFAULT_EXEMPTIONS))
    render_dpi: int = Field(default=150, ge=72, le=300)  # bundle pages are re-rendered at this resolution
    jpeg_quality: int = Field(default=75, ge=30, le=95)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="ESCR_", env_nested_delimiter="__", extra="forbid", validate_default=True
    )

    home: Path = Path("var")
    config_dir: Path = DEFAULT_CONFIG_DIR
    database_url: str | None = None  # default: sqlite under home
    store_url: str | None = None  # default: filesystem store under home/store
    stable_seconds: float = 5.0  # size and mtime unchanged this long before a file is taken
    rescan_seconds: float = 30.0
    batches_in_flight: int = 2  # files read at once (watcher and `escr ingest`), sharing the OCR slots
    child_id_pattern: str = r"\b[A-Z]{2}\d{6}\b"
    user: str | None = None  # who is at the command line; default: the login name
    preflight: PreflightLimits = Field(default_factory=PreflightLimits)
    ocr: OcrSettings = Field(default_factory=OcrSettings)
    qc: QcThresholds = Field(default_factory=QcThresholds)
    celery: CelerySettings = Field(default_factory=CelerySettings)
    metrics: MetricsSettings = Field(default_factory=MetricsSettings)
    web: WebSettings = Field(default_factory=WebSettings)
    anchor: AnchorSettings = Field(default_factory=AnchorSettings)
    store: StoreSettings = Field(default_factory=StoreSettings)
    provenance: ProvenanceSettings = Field(default_factory=ProvenanceSettings)
    records: RecordsSettings = Field(default_factory=RecordsSettings)
    disclosure: DisclosureSettings = Field(default_factory=DisclosureSettings)

    @field_validator("home", "config_dir")
    @classmethod
    def _absolute(cls, value: Path) -> Path:
        return value.expanduser().resolve()

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        config_dir = Path(os.environ.get("ESCR_CONFIG_DIR", DEFAULT_CONFIG_DIR))
        toml = TomlConfigSettingsSource(settings_cls, toml_file=config_file(config_dir, "escr.toml"))
        return (init_settings, env_settings, toml)

    # Derived locations: all state lives under `home` unless a server URL is configured.
    @property
    def intake_dir(self) -> Path:
        return self.home / "intake"

    @property
    def processing_dir(self) -> Path:
        return self.home / "processing"

    @property
    def quarantine_dir(self) -> Path:
        return self.home / "quarantine"

    @property
    def store_dir(self) -> Path:
        return self.home / "store"

    @property
    def anchor_key_file(self) -> Path:
        return self.anchor.key_file or self.home / "keys" / "anchor.key"

    @property
    def resolved_database_url(self) -> str:
        return self.database_url or f"sqlite:///{self.home / 'escr.sqlite3'}"

    def config_file(self, name: str) -> Path:
        """A configuration file: the operator's copy in `config_dir`, else the shipped default."""
        return config_file(self.config_dir, name)

    @property
    def ocr_workers(self) -> int:
        return self.ocr.workers or os.cpu_count() or 1


def load_settings(**overrides: object) -> Settings:
    """Build settings, turning validation errors into one readable ConfigError."""
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors()
        )
        raise ConfigError(f"invalid settings: {problems}") from exc
