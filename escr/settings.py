"""The one validated settings object.

Values come, lowest priority first, from the field defaults here, `config/escr.toml`, and
`ESCR_*` environment variables (nested with `__`, e.g. `ESCR_QC__MIN_DPI_FAIL=150`). The object
is built once at the entry point and passed down; nothing reads the environment elsewhere.
"""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import BaseModel, Field, ValidationError, field_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from escr.errors import ConfigError

DEFAULT_CONFIG_DIR = Path(__file__).resolve().parent.parent / "config"


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
    detect_orientation: bool = True
    # A first pass scoring below this mean word confidence triggers orientation detection.
    orientation_retry_below_conf: float = 65.0


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
    batches_in_flight: int = 2
    child_id_pattern: str = r"\b[A-Z]{2}\d{6}\b"
    user: str | None = None  # who is at the command line; default: the login name
    preflight: PreflightLimits = Field(default_factory=PreflightLimits)
    ocr: OcrSettings = Field(default_factory=OcrSettings)
    qc: QcThresholds = Field(default_factory=QcThresholds)

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
        toml = TomlConfigSettingsSource(settings_cls, toml_file=config_dir / "escr.toml")
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
    def resolved_database_url(self) -> str:
        return self.database_url or f"sqlite:///{self.home / 'escr.sqlite3'}"

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
