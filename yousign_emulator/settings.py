"""Emulator settings: plain model for in-process use, env-backed variant for `python -m yousign_emulator`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict


def _split_csv(value: Any) -> Any:
    # EMULATOR_WEBHOOK_URLS / EMULATOR_WEBHOOK_RETRY_DELAYS_SECONDS are comma separated in the environment.
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


class EmulatorSettings(BaseModel):
    """Everything the emulator can be tuned with; the defaults mimic the YouSign sandbox minus its limits."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    api_key: str = "test-key"
    webhook_secret: str = "whsec"
    webhook_urls: Annotated[list[str], NoDecode] = Field(default_factory=list)

    # None = unlimited. YouSign sandbox is 30/min and 200/h, production 60/min and 1200/h.
    requests_per_minute: int | None = Field(default=None, gt=0)
    requests_per_hour: int | None = Field(default=None, gt=0)
    # Window lengths, shrinkable so a benchmark can exercise both limits in seconds.
    minute_seconds: float = Field(default=60.0, gt=0)
    hour_seconds: float = Field(default=3600.0, gt=0)

    fault_5xx_rate: float = Field(default=0.0, ge=0.0, le=1.0)
    fault_429_rate: float = Field(default=0.0, ge=0.0, le=1.0)
    seed: int = 0

    kyc_delay_seconds: float = Field(default=1.0, ge=0.0)
    host: str = "127.0.0.1"
    port: int = Field(default=0, ge=0, le=65535)
    # Base of the links put in signature_link and e-mails; defaults to http://<host>:<port>.
    public_base_url: str | None = None

    # Webhook delivery: YouSign uses 1 s for the first try and 10 s for retries; retries are minutes
    # apart in production, kept short here so development loops stay fast.
    webhook_timeout_seconds: float = Field(default=1.0, gt=0)
    webhook_retry_timeout_seconds: float = Field(default=10.0, gt=0)
    webhook_retry_delays_seconds: Annotated[list[float], NoDecode] = Field(
        default_factory=lambda: [0.5, 1.0, 2.0]
    )
    webhook_subscription_id: str = "6c1b2a3d-0000-4000-8000-00000000e0e0"
    webhook_subscription_description: str = "yousign-emulator"
    sandbox: bool = True

    expiry_sweep_seconds: float = Field(default=1.0, gt=0)
    # Where signature requests, signers and e-mails are kept across restarts (None: memory only).
    state_file: Path | None = None
    signature_link_hours: float = Field(default=48.0, gt=0)
    workspace_id: str = "8d49eedc-0000-4000-8000-000000000002"
    log_level: str = "warning"

    @field_validator("webhook_urls", "webhook_retry_delays_seconds", mode="before")
    @classmethod
    def _csv(cls, value: Any) -> Any:
        return _split_csv(value)

    @classmethod
    def from_env(cls) -> EmulatorSettings:
        """Read EMULATOR_* variables (e.g. EMULATOR_PORT, EMULATOR_WEBHOOK_URLS=a,b)."""
        return EmulatorSettings(**_EnvSettings().model_dump())


class _EnvSettings(BaseSettings, EmulatorSettings):
    model_config = SettingsConfigDict(env_prefix="EMULATOR_", extra="ignore")
