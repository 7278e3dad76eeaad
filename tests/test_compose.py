"""docker-compose.yml is valid for Docker Compose (as `make compose-check` validates it) and wires the
services as documented. The validation needs `docker compose` or `docker-compose`: skipped without
one, except in CI (CI=true), where a missing validator fails."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tomllib
from pathlib import Path

import pytest
import yaml
from pydantic import ValidationError

from config.codec import new_key
from config.settings import Settings
from config.temporal import SEARCH_ATTRIBUTES
from starter.stack_config import SEARCH_ATTRIBUTES as DEV_SERVER_SEARCH_ATTRIBUTES

ROOT = Path(__file__).resolve().parent.parent
COMPOSE_FILE = ROOT / "docker-compose.yml"


def compose_command() -> list[str] | None:
    docker = shutil.which("docker")
    if docker and subprocess.run([docker, "compose", "version"], capture_output=True).returncode == 0:
        return [docker, "compose"]
    legacy = shutil.which("docker-compose")
    return [legacy] if legacy else None


@pytest.fixture(scope="module")
def compose() -> list[str]:
    command = compose_command()
    if command is None:
        message = "no Docker Compose to validate docker-compose.yml with: run `make compose-check` once"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message)
        pytest.skip(message)
    return command


@pytest.fixture(scope="module")
def services() -> dict:
    return yaml.safe_load(COMPOSE_FILE.read_text())["services"]


DEV_ENV = ROOT / "deploy/dev.env"
PRODUCTION_ENV = ROOT / "deploy/production.env.example"


def compose_config(compose: list[str], *options: str) -> subprocess.CompletedProcess[str]:
    # Only what the options give: none of this shell's settings.
    env = {k: v for k, v in os.environ.items() if not k.startswith(("YOUSIGN_", "TEMPORAL_", "POSTGRES_"))}
    env = {k: v for k, v in env.items() if not k.startswith(("SMTP_", "PAYLOAD_"))}
    return subprocess.run(
        [*compose, "-f", str(COMPOSE_FILE), *options, "config", "-q"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize(
    "options",
    [["--env-file", str(PRODUCTION_ENV)], ["--env-file", str(DEV_ENV), "--profile", "dev"]],
    ids=["production", "dev-profile"],
)
def test_docker_compose_accepts_the_file(compose: list[str], options: list[str]):
    done = compose_config(compose, *options)
    assert done.returncode == 0, done.stderr


def test_without_its_settings_compose_refuses_rather_than_use_development_values(compose: list[str]):
    done = compose_config(compose)
    assert done.returncode != 0 and "in .env (deploy/production.env.example)" in done.stderr
    assert "--env-file deploy/dev.env" in done.stderr


def env_file(path: Path) -> dict[str, str]:
    lines = (line.strip() for line in path.read_text().splitlines())
    return dict(line.split("=", 1) for line in lines if line and not line.startswith("#"))


def test_the_env_files_give_every_setting_compose_requires():
    required = set(re.findall(r"\$\{(\w+):\?", COMPOSE_FILE.read_text()))
    assert {"YOUSIGN_BASE_URL", "SMTP_URL", "POSTGRES_PASSWORD", "PAYLOAD_ENCRYPTION_KEYS"} <= required
    assert required <= set(env_file(PRODUCTION_ENV)) and required <= set(env_file(DEV_ENV))


def test_the_development_values_are_refused_against_yousign_itself():
    dev = {name.lower(): value for name, value in env_file(DEV_ENV).items() if name != "POSTGRES_PASSWORD"}
    assert Settings(**dev).yousign_base_url.startswith("http://yousign-emulator")  # taken for the emulator
    real = {"yousign_api_key": "real-key", "yousign_webhook_secret": "real-secret"}
    with pytest.raises(ValidationError, match="PAYLOAD_ENCRYPTION_KEYS: make a key of your own"):
        Settings(**{**dev, "yousign_base_url": "https://api.yousign.app/v3", **real})
    # The same key under another name, beside one of your own: refused all the same.
    published = dev["payload_encryption_keys"].partition(":")[2]
    renamed = {"payload_encryption_keys": f"k2:{new_key()},k1:{published}", "payload_encryption_key_id": "k2"}
    with pytest.raises(ValidationError, match="PAYLOAD_ENCRYPTION_KEYS: make a key of your own"):
        Settings(**{**dev, "yousign_base_url": "https://api.yousign.app/v3", **real, **renamed})


def test_temporal_runs_on_postgres_with_current_images_and_one_shot_setup_jobs(services: dict):
    images = {name: service.get("image", "") for name, service in services.items()}
    assert not any("auto-setup" in image for image in images.values())
    assert images["temporal"].startswith("temporalio/server:")
    assert images["temporal-ui"].startswith("temporalio/ui:")
    assert images["postgres"] == "postgres:16"
    for job in ("temporal-schema", "temporal-namespace"):
        assert images[job].startswith("temporalio/admin-tools:")
        assert "restart" not in services[job]  # one-shot: others wait for it to complete
    temporal = services["temporal"]
    assert temporal["environment"]["DB"] == "postgres12"
    assert temporal["depends_on"] == {"temporal-schema": {"condition": "service_completed_successfully"}}
    assert services["temporal-namespace"]["depends_on"] == {"temporal": {"condition": "service_healthy"}}
    dynamic_config = temporal["environment"]["DYNAMIC_CONFIG_FILE_PATH"]
    assert (ROOT / "deploy/temporal/dynamicconfig" / Path(dynamic_config).name).is_file()
    schema_script = (ROOT / "deploy/temporal/setup-postgres.sh").read_text()
    for step in ("create", "setup-schema -v 0.0", "update-schema -d"):
        assert step in schema_script
    assert "temporal_visibility" in schema_script


def test_the_namespace_job_registers_the_search_attributes_the_workflows_use():
    script = (ROOT / "deploy/temporal/setup-namespace.sh").read_text()
    registered = dict(
        re.findall(r"\b([A-Z]\w+):(Keyword|Datetime|Text|Int|Double|Bool|KeywordList)\b", script)
    )
    assert registered == DEV_SERVER_SEARCH_ATTRIBUTES
    assert set(registered) == {key.name for key in SEARCH_ATTRIBUTES}
    assert "temporal operator search-attribute create" in script
    assert "temporal operator namespace create" in script


def test_workers_scale_and_app_services_wait_for_their_dependencies(services: dict):
    worker, api = services["worker"], services["api"]
    assert "container_name" not in worker and "ports" not in worker
    assert not any("container_name" in service for service in services.values())
    for service in (worker, api):
        assert service["depends_on"] == {
            "postgres": {"condition": "service_healthy"},
            "temporal-namespace": {"condition": "service_completed_successfully"},
        }
        assert "healthcheck" in service
    assert worker["command"] == ["python", "worker.py"]
    assert api["command"] == ["python", "-m", "starter.api"] and api["ports"] == [
        "${API_PUBLISH:-127.0.0.1:8000}:8000"
    ]
    assert services["yousign-emulator"]["command"] == ["python", "-m", "yousign_emulator"]
    assert services["temporal-ui"]["environment"]["TEMPORAL_CODEC_ENDPOINT"].endswith(":8000/codec}")


def test_the_app_is_configured_with_the_names_of_api_md(services: dict):
    environment = services["worker"]["environment"]
    fields = set(Settings.model_fields) | {"pgpassword"}  # read by the PostgreSQL driver itself
    assert {name.lower() for name in environment} <= fields
    # Every setting an operator may put in .env reaches the containers (the others are the stack's).
    not_for_containers = {"api_port", "data_dir", "demo_api_key"}
    assert fields - {name.lower() for name in environment} == not_for_containers
    # Their own PostgreSQL, or this one; a password with / # ? would break the URL: passed on its own.
    assert environment["DATABASE_URL"] == "${DATABASE_URL:-postgresql://mandates@postgres:5432/mandates}"
    assert environment["PGPASSWORD"] == services["postgres"]["environment"]["POSTGRES_PASSWORD"]
    assert environment["TEMPORAL_ADDRESS"] == "${TEMPORAL_ADDRESS:-temporal:7233}"
    for name in ("DATABASE_URL", "YOUSIGN_BASE_URL", "YOUSIGN_API_KEY", "YOUSIGN_WEBHOOK_SECRET", "SMTP_URL"):
        assert environment[name]


def test_docker_waits_for_the_workers_graceful_shutdown(services: dict):
    from worker import SHUTDOWN_GRACE

    grace = services["worker"]["stop_grace_period"]
    assert grace.endswith("s") and int(grace[:-1]) > SHUTDOWN_GRACE.total_seconds() + 5


def test_the_emulator_and_the_mailbox_are_development_only(services: dict):
    assert services["yousign-emulator"]["profiles"] == ["dev"]
    assert services["mailpit"]["profiles"] == ["dev"]
    assert not any("profiles" in services[name] for name in ("postgres", "temporal", "worker", "api"))
    emulator = services["yousign-emulator"]["environment"]
    assert emulator["EMULATOR_WEBHOOK_URLS"] == "http://api:8000/v1/webhooks/yousign"


def test_the_image_runs_as_a_user_and_leaves_local_state_out():
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert dockerfile.startswith("#") and "FROM python:3.11-slim" in dockerfile
    assert re.search(r"^USER app$", dockerfile, re.MULTILINE)
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert {".venv", "data", ".git"} <= set(ignored)


def test_every_port_is_published_on_this_machine_only(services: dict):
    # Temporal's gRPC and UI, the codec and the dev tools have no authentication of their own.
    published = [port for service in services.values() for port in service.get("ports", [])]
    assert published and all(
        port.startswith("127.0.0.1:") or port.startswith("${API_PUBLISH:-127.0.0.1:") for port in published
    ), published


def test_the_image_installs_the_versions_the_tests_passed_with():
    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    lines = (ROOT / "deploy/constraints.txt").read_text().splitlines()
    pins = dict(line.split("==") for line in lines if line and not line.startswith("#"))
    pins = {canonicalize_name(name): version for name, version in pins.items()}
    for dependency in map(
        Requirement, tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    ):
        pinned = pins.get(canonicalize_name(dependency.name))
        assert pinned and dependency.specifier.contains(pinned), (dependency, pinned)
    assert "-c constraints.txt" in (ROOT / "Dockerfile").read_text()
