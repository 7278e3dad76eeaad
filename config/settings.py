"""One settings object for every entry point, read from the environment (names from api.md)."""

from __future__ import annotations

import base64
import sys
from datetime import timedelta
from functools import lru_cache
from pathlib import Path
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, ValidationError, ValidationInfo, field_validator, model_validator
from pydantic_core import PydanticUseDefault
from pydantic_settings import BaseSettings, SettingsConfigDict

from config.codec import parse_keys
from domain.calendar import check_mandate_validity
from domain.durations import parse_iso_duration
from domain.errors import RuleViolation
from domain.pacing import MAX_CALLS_PER_ACTIVITY, activity_rate_limit

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEVELOPMENT_SECRET_PREFIX = "dev-emulator-"  # deploy/dev.env's, for the emulator only
DEVELOPMENT_PAYLOAD_KEY = "YLi2FAAfZhZIrxgkDwo2jnh08lhDHO3TlYsW2I7SzMc="  # deploy/dev.env's, published


# Settings whose empty value says "none" rather than "the default".
EMPTY_MEANS_OFF = frozenset({"worker_metrics_address"})


def _password_breaks_url(url: str) -> bool:
    parts = urlsplit(url)
    if parts.netloc.count("@") > 1:
        return True  # an @ of the password: the driver splits at the first
    # A / ? # of the password ended the host part early: its @ is left in what follows.
    return "@" not in parts.netloc and "@" in parts.path + parts.query + parts.fragment


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=None, extra="ignore", frozen=True)

    database_url: SecretStr | None = Field(default=None, description="Absent: embedded PostgreSQL")
    data_dir: Path = Field(default=PROJECT_ROOT / "data", description="Embedded PostgreSQL, Temporal SQLite")

    temporal_address: str = "localhost:7233"
    temporal_namespace: str = "default"
    temporal_api_key: SecretStr | None = Field(default=None, description="Temporal Cloud API key")
    temporal_tls: bool = False
    temporal_tls_cert: Path | None = Field(default=None, description="Client certificate (mTLS), PEM")
    temporal_tls_key: Path | None = Field(default=None, description="Client private key (mTLS), PEM")
    temporal_task_queue: str = "mandates"
    payload_encryption_keys: SecretStr | None = Field(default=None, description="id:base64key,...")
    payload_encryption_key_id: str = "default"
    codec_auth_token: SecretStr | None = Field(default=None, description="Bearer token the codec server asks")
    codec_allow_any_client: bool = Field(
        default=False, description="Serve the codec without a token beyond loopback (behind SSO only)"
    )
    codec_cors_origins: str = (
        "http://localhost:8233,http://127.0.0.1:8233,http://localhost:8080,http://127.0.0.1:8080"
    )
    codec_allowed_hosts: str = Field(
        default="localhost,127.0.0.1,::1",
        description="Host names the codec answers under without a token (its URL's, as the browser has it)",
    )
    yousign_task_queue: str = "yousign"

    yousign_base_url: str | None = None
    yousign_api_key: SecretStr = SecretStr("")
    yousign_webhook_secret: SecretStr = SecretStr("")
    yousign_requests_per_minute: int = Field(default=60, gt=0)
    yousign_requests_per_hour: int = Field(default=1200, gt=0)
    yousign_timeout_seconds: float = Field(default=15.0, gt=0)

    # 500-child pages overran Temporal's 10 s workflow-task timeout on 2 cores (bench c); 100 did not.
    bulk_page_size: int = Field(default=100, ge=1, le=1000)

    mandate_validity: str = "P1M"
    reconciliation_interval: str = "PT1H"

    smtp_url: SecretStr | None = Field(default=None, description="smtp[s]://user:password@host:port")
    mail_from: str = "mandats@cabinet.example"

    api_host: str = Field(default="127.0.0.1", description="0.0.0.0 to serve beyond this machine")
    api_port: int = Field(default=8000, ge=1, le=65535)
    worker_metrics_address: str | None = Field(
        default="127.0.0.1:9464",
        description="Where the worker serves Prometheus metrics (SDK and YouSign); 0.0.0.0:9464 for"
        " a scraper on another machine",
    )
    demo_api_key: SecretStr | None = None
    log_level: str = "INFO"

    @field_validator("mandate_validity", "reconciliation_interval")
    @classmethod
    def _valid_duration(cls, value: str, info: ValidationInfo) -> str:
        try:
            if info.field_name == "mandate_validity":
                check_mandate_validity(value)  # its own limit, under a year
            months, _ = parse_iso_duration(value)
        except RuleViolation as violation:  # its message, without the field the caller names
            raise ValueError(violation.message) from None
        if months and info.field_name == "reconciliation_interval":
            # A schedule's interval is a fixed length of time; a month is not one.
            raise ValueError("must not use months or years (PT1H, P1D...)")
        return value

    @field_validator("*", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: object, info: ValidationInfo) -> object:
        # `BULK_PAGE_SIZE=` in .env (docker-compose passes it on empty): the default, not an error.
        if value == "" and info.field_name not in EMPTY_MEANS_OFF:
            raise PydanticUseDefault()
        return value

    @field_validator("database_url", "smtp_url")
    @classmethod
    def _readable_url(cls, value: SecretStr | None) -> SecretStr | None:
        # A password holding / # ? @ unencoded moves the end of the user part: the driver would then
        # read part of it as a host or a database, and say so in a traceback quoting it.
        if value is not None and _password_breaks_url(value.get_secret_value()):
            raise ValueError(
                "not a URL that can be read: percent-encode the characters / # ? @ : of its password"
            )
        return value

    @field_validator("yousign_requests_per_hour")
    @classmethod
    def _limits_allow_sending(cls, per_hour: int, info: ValidationInfo) -> int:
        per_minute = info.data.get("yousign_requests_per_minute")
        if per_minute is not None:
            try:
                activity_rate_limit(per_minute, per_hour, MAX_CALLS_PER_ACTIVITY)
            except ValueError as error:  # the YouSign queue's cap could not be set
                raise ValueError(f"with YOUSIGN_REQUESTS_PER_MINUTE={per_minute}: {error}") from None
        return per_hour

    @field_validator("payload_encryption_keys")
    @classmethod
    def _readable_keys(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None:
            try:
                parse_keys(value.get_secret_value())
            except ValueError as error:
                raise ValueError(str(error).removeprefix("PAYLOAD_ENCRYPTION_KEYS: ")) from None
        return value

    @field_validator("payload_encryption_key_id")
    @classmethod
    def _key_among_the_keys(cls, key_id: str, info: ValidationInfo) -> str:
        keys = info.data.get("payload_encryption_keys")  # absent when invalid: its own error says it
        if keys is not None and key_id not in (ids := parse_keys(keys.get_secret_value())):
            raise ValueError(
                f"{key_id!r} is not among the keys of PAYLOAD_ENCRYPTION_KEYS ({', '.join(ids)})"
            )
        return key_id

    @model_validator(mode="after")
    def _no_development_secrets_with_yousign(self) -> Settings:
        # docker-compose's defaults reach the emulator; against YouSign itself they would let anyone
        # forge webhooks ("signed", "verified"): refuse to start instead.
        # Without them, every webhook would be refused; over http, the API key would travel in clear.
        url = urlsplit(self.yousign_base_url or "")
        if (url.hostname or "").endswith(".yousign.app"):
            if url.scheme != "https":
                raise ValueError("YOUSIGN_BASE_URL: YouSign is reached over https only")
            for name, secret in (
                ("YOUSIGN_WEBHOOK_SECRET", self.yousign_webhook_secret),
                ("YOUSIGN_API_KEY", self.yousign_api_key),
            ):
                if not secret.get_secret_value():
                    raise ValueError(f"{name}: set the value YouSign gave you")
                if secret.get_secret_value().startswith(DEVELOPMENT_SECRET_PREFIX):
                    raise ValueError(f"{name}: set the value YouSign gave you (this one is the emulator's)")
            keys = parse_keys(
                self.payload_encryption_keys.get_secret_value() if self.payload_encryption_keys else ""
            )
            if base64.b64decode(DEVELOPMENT_PAYLOAD_KEY) in keys.values():
                raise ValueError(
                    "PAYLOAD_ENCRYPTION_KEYS: make a key of your own (one of these is the development one,"
                    " published in deploy/dev.env)"
                )
        # Whatever the URL (YouSign through a proxy, say): a real key beside the published webhook
        # secret means the compose default was left in place, and anyone could forge a signature.
        key = self.yousign_api_key.get_secret_value()
        secret = self.yousign_webhook_secret.get_secret_value()
        if (
            key
            and not key.startswith(DEVELOPMENT_SECRET_PREFIX)
            and secret.startswith(DEVELOPMENT_SECRET_PREFIX)
        ):
            raise ValueError(
                "YOUSIGN_WEBHOOK_SECRET: set your YouSign webhook's secret (this one is the emulator's,"
                " published, while YOUSIGN_API_KEY is a real key)"
            )
        return self

    @property
    def reconciliation_every(self) -> timedelta:
        return parse_iso_duration(self.reconciliation_interval)[1]


@lru_cache
def get_settings() -> Settings:
    return Settings()


def invalid_settings(error: ValidationError) -> list[str]:
    """One line per invalid variable, named as it is set (values are not repeated: some are secrets)."""
    lines = []
    for problem in error.errors():
        name = "_".join(str(part) for part in problem["loc"]).upper() or "the settings"
        lines.append(f"{name} is invalid: {problem['msg'].removeprefix('Value error, ')}")
    return lines


def settings_or_exit(program: str) -> Settings:
    """The settings, or what is wrong with them on stderr and exit status 2, without a traceback."""
    try:
        return get_settings()
    except ValidationError as error:
        for line in invalid_settings(error):
            print(f"{program}: {line}", file=sys.stderr)
        raise SystemExit(2) from None
