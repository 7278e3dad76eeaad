"""`make run`: port checks, remembered secrets, idempotent demo data, the mailbox, and the whole stack
started and stopped the way `make run` does it."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import signal
import socket
import stat
import subprocess
import sys
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path

import httpx
import psutil
import pytest
from aiosmtpd.smtp import SMTP
from pydantic import ValidationError
from temporalio.api.operatorservice.v1 import ListSearchAttributesRequest
from temporalio.client import Client, WorkflowExecutionStatus

from clients.mailer import Mailer
from config.codec import parse_keys
from domain.identifiers import luhn_valid, normalize_siret
from starter.demo import (
    DEMO_FIRM_NAME,
    ensure_demo_firm,
    ensure_demo_representative,
    sample_siret,
    seed_demo_dossiers,
)
from starter.mailbox import Maildir, SinkHandler, build_app
from starter.stack import keep_private
from starter.stack_config import (
    SEARCH_ATTRIBUTES,
    PortProblem,
    ResolvedSecrets,
    StackPlan,
    StackState,
    check_ports,
    child_environment,
    dev_server_argv,
    emulator_environment,
    resolve_secrets,
)
from store import dossiers, firms, kyc
from tests.helpers import eventually, free_port, test_settings
from workflows.kyc import kyc_workflow_id

ROOT = Path(__file__).resolve().parent.parent
EMBEDDED_VARIABLES = ("DATABASE_URL", "TEMPORAL_ADDRESS", "YOUSIGN_BASE_URL", "SMTP_URL")
PORT_VARIABLES = (
    "API_PORT",
    "TEMPORAL_PORT",
    "TEMPORAL_UI_PORT",
    "EMULATOR_PORT",
    "SMTP_PORT",
    "MAILBOX_PORT",
)
OTHER_VARIABLES = (
    "WORKER_METRICS_ADDRESS",
    "YOUSIGN_API_KEY",
    "YOUSIGN_WEBHOOK_SECRET",
    "DEMO_API_KEY",
    "TEMPORAL_NAMESPACE",
    "CODEC_CORS_ORIGINS",
)


@pytest.fixture
def stack_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """This process's environment as on a fresh machine: nothing configured, data in a temporary dir."""
    for name in (*EMBEDDED_VARIABLES, *PORT_VARIABLES, *OTHER_VARIABLES):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("DATA_DIR", str(tmp_path / "data"))
    return tmp_path / "data"


# ---- ports ---------------------------------------------------------------------------------------
def test_a_taken_port_is_named_with_the_variable_to_change():
    with listening_port() as port:
        with pytest.raises(PortProblem) as caught:
            check_ports([(free_port(), "MAILBOX_PORT", "the mailbox page"), (port, "API_PORT", "the API")])
    message = str(caught.value)
    assert f"Port {port} (the API) is already in use" in message
    assert "set API_PORT to a free port" in message and "\n" not in message


def test_a_port_asked_for_twice_is_refused():
    port = free_port()
    with pytest.raises(PortProblem, match=f"Port {port} is asked for twice \\(API_PORT and SMTP_PORT\\)"):
        check_ports([(port, "API_PORT", "the API"), (port, "SMTP_PORT", "the SMTP mailbox")])


def test_make_run_with_a_taken_port_prints_one_line_and_starts_nothing(stack_env: Path):
    with listening_port() as port:
        env = {**os.environ, "API_PORT": str(port), "WORKER_METRICS_ADDRESS": ""}
        done = _run([sys.executable, "-m", "starter.stack"], env)
    assert done.returncode == 1
    assert done.stderr.startswith(
        f"make run: Port {port} (the API) is already in use: stop what uses it, or set API_PORT"
    )
    assert done.stderr.count("\n") == 1
    assert "Traceback" not in done.stdout + done.stderr
    assert not stack_env.exists() or not any(stack_env.iterdir())  # not even its logs' folder


def test_only_the_embedded_parts_need_ports(stack_env: Path, monkeypatch: pytest.MonkeyPatch):
    everything = {variable for _, variable, _ in StackPlan.from_env().ports()}
    assert everything == {
        *PORT_VARIABLES,
        "WORKER_METRICS_ADDRESS",
    }
    monkeypatch.setenv("TEMPORAL_ADDRESS", "temporal.example:7233")
    monkeypatch.setenv("YOUSIGN_BASE_URL", "https://api-sandbox.yousign.app/v3")
    monkeypatch.setenv("YOUSIGN_API_KEY", "key-from-yousign")
    monkeypatch.setenv("YOUSIGN_WEBHOOK_SECRET", "secret-from-yousign")
    monkeypatch.setenv("SMTP_URL", "smtp://mail.example:25")
    monkeypatch.setenv("WORKER_METRICS_ADDRESS", "")
    assert [variable for _, variable, _ in StackPlan.from_env().ports()] == ["API_PORT"]


def test_the_dev_server_is_persisted_with_wal_and_the_search_attributes(stack_env: Path):
    argv = dev_server_argv(StackPlan.from_env(), Path("/venv/bin/temporal"), codec=False)
    assert argv[:3] == ["/venv/bin/temporal", "server", "start-dev"]
    joined = " ".join(argv)
    assert f"--db-filename {stack_env.resolve() / 'temporal.sqlite'}" in joined
    assert "--sqlite-pragma journal_mode=wal --sqlite-pragma synchronous=normal" in joined
    assert "--port 7233 --ui-port 8233" in joined and "--namespace default" in joined
    registered = [argv[i + 1] for i, arg in enumerate(argv) if arg == "--search-attribute"]
    assert registered == [
        "FirmId=Keyword",
        "DossierId=Keyword",
        "MandateStatus=Keyword",
        "BulkSendId=Keyword",
        "MandateExpiresAt=Datetime",
    ]
    assert "--ui-codec-endpoint" not in joined
    # One partition per queue, or the YouSign queue's rate cap is split and partly lost.
    assert "--dynamic-config-value matching.numTaskqueueReadPartitions=1" in joined
    assert "--dynamic-config-value matching.numTaskqueueWritePartitions=1" in joined
    assert "--dynamic-config-value matching.enableFairness=true" in joined  # firms take turns
    with_codec = dev_server_argv(StackPlan.from_env(), Path("temporal"), codec=True)
    assert "http://127.0.0.1:8000/codec" in with_codec


def test_children_share_one_database_and_the_embedded_addresses(stack_env: Path):
    plan = StackPlan.from_env()
    secrets = ResolvedSecrets(
        yousign_api_key="k",
        yousign_webhook_secret="s",
        payload_encryption_keys="p:a2V5",
        payload_encryption_key_id="p",
    )
    env = child_environment(plan, {"KEEP": "me"}, secrets, "postgresql://db")
    assert env["KEEP"] == "me" and env["DATABASE_URL"] == "postgresql://db"
    assert env["TEMPORAL_ADDRESS"] == "127.0.0.1:7233"
    assert env["YOUSIGN_BASE_URL"] == "http://127.0.0.1:8090/v3"
    assert env["SMTP_URL"] == "smtp://127.0.0.1:1025"
    assert (env["YOUSIGN_API_KEY"], env["YOUSIGN_WEBHOOK_SECRET"]) == ("k", "s")
    assert env["WORKER_METRICS_ADDRESS"] == "127.0.0.1:9464"
    emulator = emulator_environment(plan, secrets)
    assert (emulator["EMULATOR_API_KEY"], emulator["EMULATOR_WEBHOOK_SECRET"]) == ("k", "s")
    assert emulator["EMULATOR_WEBHOOK_URLS"] == "http://127.0.0.1:8000/v1/webhooks/yousign"
    assert emulator["EMULATOR_PORT"] == "8090"


# ---- remembered secrets --------------------------------------------------------------------------
def test_generated_secrets_are_remembered_in_stack_json(stack_env: Path):
    plan = StackPlan.from_env()
    first = resolve_secrets(plan, StackState(stack_env / "stack.json"), {})
    again = resolve_secrets(plan, StackState(stack_env / "stack.json"), {})
    assert first == again and len(first.yousign_api_key) >= 40 and len(first.yousign_webhook_secret) >= 40
    assert first.yousign_api_key != first.yousign_webhook_secret
    assert stat.S_IMODE((stack_env / "stack.json").stat().st_mode) == 0o600

    given = {"YOUSIGN_API_KEY": "given-key", "YOUSIGN_WEBHOOK_SECRET": "given-secret"}
    chosen = resolve_secrets(plan, StackState(stack_env / "stack.json"), given)
    assert (chosen.yousign_api_key, chosen.yousign_webhook_secret) == ("given-key", "given-secret")
    state = StackState(stack_env / "stack.json")
    assert state.get("yousign_api_key") == first.yousign_api_key  # a given value is never stored


def test_a_real_yousign_gets_no_generated_secret(stack_env: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("YOUSIGN_BASE_URL", "https://api-sandbox.yousign.app/v3")
    with pytest.raises(ValidationError, match="YOUSIGN_WEBHOOK_SECRET: set the value YouSign gave you"):
        StackPlan.from_env()  # `make run` says so in one line, and stops
    monkeypatch.setenv("YOUSIGN_API_KEY", "key-from-yousign")
    monkeypatch.setenv("YOUSIGN_WEBHOOK_SECRET", "secret-from-yousign")
    secrets = resolve_secrets(StackPlan.from_env(), StackState(stack_env / "stack.json"), {})
    assert (secrets.yousign_api_key, secrets.yousign_webhook_secret) == ("", "")
    state = StackState(stack_env / "stack.json")
    assert state.get("yousign_api_key") is None and state.get("yousign_webhook_secret") is None


def test_payload_encryption_key_is_generated_once_unless_given(stack_env: Path):
    plan, path = StackPlan.from_env(), stack_env / "stack.json"
    first = resolve_secrets(plan, StackState(path), {})
    assert first.payload_encryption_key_id == "stack"
    assert parse_keys(first.payload_encryption_keys)["stack"]  # a real 256-bit key
    assert (
        resolve_secrets(plan, StackState(path), {}).payload_encryption_keys == first.payload_encryption_keys
    )
    given = {"PAYLOAD_ENCRYPTION_KEYS": "k1:" + "A" * 44, "PAYLOAD_ENCRYPTION_KEY_ID": "k1"}
    assert (
        resolve_secrets(plan, StackState(path), given).payload_encryption_keys
        == given["PAYLOAD_ENCRYPTION_KEYS"]
    )
    env = child_environment(plan, {}, first, "postgresql://db")
    assert env["PAYLOAD_ENCRYPTION_KEYS"] == first.payload_encryption_keys


# ---- demo data -----------------------------------------------------------------------------------
async def test_the_demo_firm_is_created_once_with_its_platform_and_key(db):
    # Created here whatever ran before in this database (the first `make run` creates it).
    await db.execute("UPDATE firms SET name = name || ' (earlier)' WHERE name = $1", DEMO_FIRM_NAME)
    first = await ensure_demo_firm(db, None)
    assert first.created
    again = await ensure_demo_firm(db, first.api_key)
    assert again.firm.id == first.firm.id and not again.created and again.api_key == first.api_key
    assert first.firm.platform is not None and first.firm.platform.siren == "552081317"
    assert await firms.firm_id_for_api_key(db, first.api_key) == first.firm.id
    assert await db.fetchval("SELECT count(*) FROM firms WHERE name = $1", DEMO_FIRM_NAME) == 1
    stored = await db.fetchval("SELECT count(*) FROM api_keys WHERE firm_id = $1", first.firm.id)
    configured = await ensure_demo_firm(db, "mk_configured-demo-key")  # DEMO_API_KEY changed
    assert configured.firm.id == first.firm.id and configured.api_key == "mk_configured-demo-key"
    assert await firms.firm_id_for_api_key(db, "mk_configured-demo-key") == first.firm.id
    assert await db.fetchval("SELECT count(*) FROM api_keys WHERE firm_id = $1", first.firm.id) == stored + 1


async def test_sample_dossiers_are_seeded_once_some_missing_information(db, firm):
    assert await seed_demo_dossiers(db, firm.id, 5) == 5
    assert await seed_demo_dossiers(db, firm.id, 5) == 0
    counts = await dossiers.status_counts(db, firm.id)
    assert {s.value: n for s, n in counts.items() if n} == {"ready_for_mandate": 3, "missing_information": 2}
    page, _ = await dossiers.list_dossiers(db, firm.id)
    for dossier, _ in page:
        if dossier.siret:
            assert normalize_siret(dossier.siret) == dossier.siret


def test_sample_sirets_pass_luhn_on_siren_and_siret():
    rng = random.Random(7)
    for _ in range(200):
        siret = sample_siret(rng)
        assert len(siret) == 14 and luhn_valid(siret) and luhn_valid(siret[:9])


async def test_the_demo_representative_is_submitted_once(db, firm, dev_env):
    settings = test_settings()
    client = dev_env.client
    submission = await ensure_demo_representative(db, client, settings, firm.id)
    try:
        assert submission.status == "pending" and submission.document_type == "passport"
        files = await kyc.load_files(db, submission.id)
        assert [f.content_type for f in files] == ["image/jpeg"] and files[0].content[:2] == b"\xff\xd8"
        handle = client.get_workflow_handle(kyc_workflow_id(firm.id))
        assert (await handle.describe()).status == WorkflowExecutionStatus.RUNNING
        assert (await ensure_demo_representative(db, client, settings, firm.id)).id == submission.id

        await handle.terminate("Temporal data lost")  # e.g. temporal.sqlite deleted
        again = await ensure_demo_representative(db, client, settings, firm.id)
        assert again.id != submission.id and again.status == "pending"
    finally:
        await client.get_workflow_handle(kyc_workflow_id(firm.id)).terminate("test over")


# ---- mailbox -------------------------------------------------------------------------------------
async def test_the_mailbox_keeps_messages_as_eml_files_and_lists_them(tmp_path: Path):
    maildir = Maildir(tmp_path / "mailbox")
    server = await asyncio.get_running_loop().create_server(
        lambda: SMTP(SinkHandler(maildir)), "127.0.0.1", 0
    )
    port = server.sockets[0].getsockname()[1]
    try:
        await Mailer(f"smtp://127.0.0.1:{port}", "mandats@cabinet.example").send(
            to="jeanne@acme.example", subject="Mandat signé", body="Bonjour", attachment=("m.pdf", b"%PDF")
        )
    finally:
        server.close()
        await server.wait_closed()
    [message_id] = maildir.ids()
    assert (tmp_path / "mailbox" / f"{message_id}.eml").is_file()
    transport = httpx.ASGITransport(app=build_app(maildir))
    async with httpx.AsyncClient(transport=transport, base_url="http://mailbox") as web:
        index = await web.get("/")
        page = await web.get(f"/messages/{message_id}")
        attachment = await web.get(f"/messages/{message_id}/attachments/0")
        listed = (await web.get("/messages.json")).json()
        assert (await web.get("/messages/..%2F..%2Fetc%2Fpasswd")).status_code == 404
    assert "Mandat signé" in index.text and "jeanne@acme.example" in index.text
    assert "Bonjour" in page.text and "m.pdf" in page.text
    assert attachment.content == b"%PDF" and attachment.headers["content-type"] == "application/pdf"
    assert listed == [
        {
            "id": message_id,
            "date": listed[0]["date"],
            "from": "mandats@cabinet.example",
            "to": "jeanne@acme.example",
            "subject": "Mandat signé",
        }
    ]


# ---- the whole stack -----------------------------------------------------------------------------
async def test_make_run_starts_everything_and_ctrl_c_stops_everything(stack_env: Path):
    ports = {name: str(free_port()) for name in PORT_VARIABLES}
    env = {
        **os.environ,
        **ports,
        "WORKER_METRICS_ADDRESS": f"127.0.0.1:{free_port()}",
        "DEMO_API_KEY": "mk_stack-test-key",
        "DEMO_SEED_DOSSIERS": "2",
    }
    key = {"Authorization": "Bearer mk_stack-test-key"}

    api = f"http://127.0.0.1:{ports['API_PORT']}"
    pending: dict[str, str] = {}

    async def send_a_mandate(web: httpx.AsyncClient) -> None:
        """Take a dossier's mandate to pending through the API, as a firm would."""
        dossier = (await web.get(f"{api}/v1/dossiers", headers=key)).json()["items"][0]
        await eventually(lambda: _firm_verified(web, api, key), within=60)
        assert (await web.post(f"{api}/v1/dossiers/{dossier['id']}/mandate", headers=key)).status_code == 201
        assert (
            await web.post(f"{api}/v1/dossiers/{dossier['id']}/mandate/send", headers=key)
        ).status_code == 202
        await eventually(lambda: _mandate_status(web, api, key, dossier["id"], "pending"), within=60)
        pending.update(dossier_id=dossier["id"], email=dossier["legal_representative"]["email"])

    async def sign_after_the_restart(web: httpx.AsyncClient) -> None:
        """The client follows the link of YouSign's e-mail and clicks "Signer", as a browser does."""
        emulator = f"http://127.0.0.1:{ports['EMULATOR_PORT']}"
        mails = (await web.get(f"{emulator}/mailbox.json")).json()
        link = next(
            m["link"] for m in mails if m["to"] == pending["email"] and m["kind"] == "signature_request"
        )
        assert (await web.get(link)).status_code == 200
        assert (await web.post(f"{link}/sign", data={})).status_code in (200, 303)
        await eventually(
            lambda: _dossier_status(web, api, key, pending["dossier_id"], "ready_for_designation"), within=60
        )

    output = await _start_and_stop(env, stack_env, ports, key, during=send_a_mandate)
    assert "Representative    Camille Durand: " in output and "Dossiers          2 " in output
    state = StackState(stack_env / "stack.json")
    assert state.get("yousign_api_key") and state.get("yousign_webhook_secret")
    assert state.get("demo_api_key") is None  # DEMO_API_KEY was given

    # `make run` again: the same data, the Temporal SQLite (and its search attributes) reused.
    # Nothing lost across the restart: the pending mandate is signed once everything is back.
    again = await _start_and_stop(env, stack_env, ports, key, during=sign_after_the_restart)
    assert "Dossiers          2 " in again
    assert StackState(stack_env / "stack.json").get("yousign_api_key") == state.get("yousign_api_key")
    # Signers, e-mails and the database are personal data: nothing there is readable by others.
    exposed = [str(path) for path in stack_env.rglob("*") if path.stat().st_mode & 0o077]
    assert not exposed, exposed


async def _firm_verified(web: httpx.AsyncClient, api: str, key: dict) -> bool:
    firm = (await web.get(f"{api}/v1/firm", headers=key)).json()
    return firm["legal_representative"]["verification"]["status"] == "verified"


async def _mandate_status(web: httpx.AsyncClient, api: str, key: dict, dossier_id: str, status: str) -> bool:
    return (await web.get(f"{api}/v1/dossiers/{dossier_id}/mandate", headers=key)).json().get(
        "status"
    ) == status


async def _dossier_status(web: httpx.AsyncClient, api: str, key: dict, dossier_id: str, status: str) -> bool:
    return (await web.get(f"{api}/v1/dossiers/{dossier_id}", headers=key)).json()[
        "einvoicing_status"
    ] == status


async def _start_and_stop(
    env: dict[str, str],
    data: Path,
    ports: dict[str, str],
    key: dict,
    during: Callable[[httpx.AsyncClient], Awaitable[None]] | None = None,
) -> str:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "starter.stack",
        cwd=ROOT,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    assert process.stdout is not None
    lines: list[str] = []
    try:
        async with asyncio.timeout(60):
            while not lines or "curl -H" not in lines[-1]:
                line = (await process.stdout.readline()).decode()
                assert line, "the stack stopped before its banner:\n" + "".join(lines)
                lines.append(line)
        children = psutil.Process(process.pid).children(recursive=True)
        postgres = psutil.Process(int((data / "postgres" / "postmaster.pid").read_text().split()[0]))
        # A fresh stack on a loaded machine: its first send waits for the first render and record.
        async with httpx.AsyncClient(trust_env=False, timeout=30) as web:
            api = f"http://127.0.0.1:{ports['API_PORT']}"
            listed = await web.get(f"{api}/v1/dossiers", headers=key)
            assert listed.status_code == 200 and len(listed.json()["items"]) == 2
            assert (await web.get(f"http://127.0.0.1:{ports['TEMPORAL_UI_PORT']}/")).status_code == 200
            assert (await web.get(f"http://127.0.0.1:{ports['EMULATOR_PORT']}/")).status_code == 200
            assert (await web.get(f"http://127.0.0.1:{ports['MAILBOX_PORT']}/")).status_code == 200
            if during is not None:
                await during(web)
        temporal = await Client.connect(f"127.0.0.1:{ports['TEMPORAL_PORT']}")
        listed_attributes = await temporal.operator_service.list_search_attributes(
            ListSearchAttributesRequest(namespace="default")
        )
        assert set(SEARCH_ATTRIBUTES) <= set(listed_attributes.custom_attributes)
    except BaseException:
        process.kill()
        raise
    process.send_signal(signal.SIGINT)
    rest = (await asyncio.wait_for(process.stdout.read(), 40)).decode()
    output = "".join(lines) + rest
    assert await process.wait() == 0, output
    _, alive = psutil.wait_procs([*children, postgres], timeout=5)
    assert not alive, f"left running: {alive}"
    assert len(children) >= 5  # temporal, emulator, mailbox, worker, API (+ their own children)
    assert "Traceback" not in output and output.rstrip().endswith("[stack] stopped")
    check_ports([(int(port), name, name) for name, port in ports.items()])  # all free again
    return output


@contextlib.contextmanager
def listening_port() -> Iterator[int]:
    """A loopback port something listens on, for the duration of a `with`."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock.getsockname()[1]


def _run(argv: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize("program", [["worker.py"], ["-m", "starter.api"]])
def test_a_wrong_setting_is_named_without_a_traceback(program: list[str]):
    env = {**os.environ, "YOUSIGN_REQUESTS_PER_MINUTE": "abc", "API_PORT": "99999"}
    done = subprocess.run(
        [sys.executable, *program], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 2, done.stderr
    assert "YOUSIGN_REQUESTS_PER_MINUTE is invalid" in done.stderr and "API_PORT is invalid" in done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize("program", [["worker.py"], ["-m", "starter.api"]])
def test_a_missing_service_is_named_without_a_traceback(program: list[str], database_url: str):
    def start(**variables: str) -> subprocess.CompletedProcess:
        env = {**os.environ, **variables}
        return subprocess.run(
            [sys.executable, *program], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
        )

    no_database = start(DATABASE_URL="postgresql://mandates:s3cret@127.0.0.1:1/mandates")
    assert no_database.returncode == 1, no_database.stderr
    assert "cannot use PostgreSQL (DATABASE_URL): ConnectionRefusedError" in no_database.stderr
    assert "Traceback" not in no_database.stderr and "s3cret" not in no_database.stderr

    no_temporal = start(DATABASE_URL=database_url, TEMPORAL_ADDRESS="127.0.0.1:1")
    assert no_temporal.returncode == 1, no_temporal.stderr
    assert "cannot reach Temporal at 127.0.0.1:1 (TEMPORAL_ADDRESS)" in no_temporal.stderr
    assert "Traceback" not in no_temporal.stderr


@pytest.mark.parametrize(
    ("program", "variable"),
    [(["worker.py"], "WORKER_METRICS_ADDRESS"), (["-m", "starter.api"], "API_PORT")],
)
def test_a_port_in_use_is_named_without_a_traceback(program: list[str], variable: str):
    with socket.socket() as taken:  # another worker's metrics, another API on this host
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        address = {"WORKER_METRICS_ADDRESS": f"127.0.0.1:{port}", "API_PORT": str(port)}[variable]
        env = {**os.environ, variable: address, "API_HOST": "127.0.0.1"}
        done = subprocess.run(
            [sys.executable, *program], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
        )
    assert done.returncode == 1, done.stderr
    line = done.stderr.strip()
    assert f"127.0.0.1:{port} (" in line and variable in line and "in use" in line, line
    assert "Traceback" not in done.stderr


def test_yousign_limits_too_low_for_one_send_are_refused_at_start():
    from pydantic import ValidationError

    from config.settings import invalid_settings
    from tests.helpers import test_settings

    with pytest.raises(ValidationError) as refused:
        test_settings(yousign_requests_per_minute=7)  # a send makes up to 4 calls: two need 8
    [line] = invalid_settings(refused.value)
    assert line.startswith("YOUSIGN_REQUESTS_PER_HOUR is invalid") and "YOUSIGN_REQUESTS_PER_MINUTE=7" in line
    assert test_settings(yousign_requests_per_minute=8).yousign_requests_per_minute == 8


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("postgresql://u:pw@h:5432/db", "postgresql://u:***@h:5432/db"),
        ("postgresql://u@h/db?password=secret&x=1", "postgresql://u@h/db?password=***&x=1"),
        ("postgresql://h/db?sslpassword=zz", "postgresql://h/db?sslpassword=***"),
        ("postgresql://u:ab/cd@h/db", "postgresql://u:***@h/db"),  # unencoded: never half shown
        ("smtp://mail.example:25", "smtp://mail.example:25"),
    ],
)
def test_the_banner_never_prints_a_password(url, shown):
    from starter.stack_banner import redact

    assert redact(url) == shown


async def test_the_end_of_the_embedded_postgresql_is_seen(tmp_path: Path):
    from starter.stack_postgres import EmbeddedPostgres, wait_for_exit

    # PostgreSQL runs as pgserver's daemon, not as a child: the stack finds it by postmaster.pid.
    postmaster = await asyncio.create_subprocess_exec(sys.executable, "-c", "import time; time.sleep(60)")
    (tmp_path / "postmaster.pid").write_text(f"{postmaster.pid}\n{tmp_path}\n")
    assert EmbeddedPostgres(tmp_path).postmaster_pid() == postmaster.pid
    ended = asyncio.ensure_future(wait_for_exit(postmaster.pid, interval=0.05))
    await asyncio.sleep(0.3)
    assert not ended.done()
    postmaster.kill()  # not reaped yet: a zombie has ended all the same
    await asyncio.wait_for(ended, 5)
    await postmaster.wait()
    assert EmbeddedPostgres(tmp_path / "none").postmaster_pid() is None


async def test_the_embedded_postgresql_stops_though_a_killed_user_is_still_listed(tmp_path: Path):
    from starter.stack_postgres import EmbeddedPostgres, wait_for_exit

    postgres = EmbeddedPostgres(tmp_path / "postgres")
    await postgres.start()
    postmaster = postgres.postmaster_pid()
    # Another process used it since (`python -m starter.cli` on the same DATA_DIR), and was killed:
    # pgserver still counts it among the server's users.
    user = await asyncio.create_subprocess_exec(sys.executable, "-c", "pass")
    await user.wait()
    handles = tmp_path / "postgres" / ".handle_pids.json"
    handles.write_text(json.dumps([*json.loads(handles.read_text()), user.pid]))
    assert await postgres.stop() is True
    await asyncio.wait_for(wait_for_exit(postmaster, interval=0.05), 30)  # it stayed up for ever


def test_a_part_that_cannot_start_is_reported_with_its_own_line(tmp_path: Path):
    from starter.stack_children import Child

    worker = Child("worker", ["python", "worker.py"], {}, tmp_path / "worker.log")
    assert worker.reason_given() is None  # no log yet
    said = "worker: Temporal namespace 'default' (TEMPORAL_NAMESPACE) is served by another database"
    worker.log_path.write_text(f'{{"event": "migration applied"}}\n{said}\n\n')
    assert worker.reason_given() == said
    worker.log_path.write_text("Traceback (most recent call last):\n  ...\nValueError: a bug\n")
    assert worker.reason_given() is None  # a crash: the log says more than a line


def test_what_an_earlier_stack_left_readable_by_others_is_made_private(tmp_path: Path):
    data = tmp_path / "data"
    (data / "mailbox").mkdir(parents=True)
    (data / "postgres").mkdir(mode=0o700)
    mail, log, pgconf = data / "mailbox" / "1.eml", data / "stack.log", data / "postgres" / "postgresql.conf"
    for path in (mail, log, pgconf):
        path.write_text("x")
        path.chmod(0o644)
    (data / "mailbox").chmod(0o755)
    umask = os.umask(0o022)
    try:
        keep_private(data)
        assert [oct(p.stat().st_mode & 0o777) for p in (mail, log, data / "mailbox")] == ["0o600"] * 2 + [
            "0o700"
        ]
        assert pgconf.stat().st_mode & 0o777 == 0o644  # PostgreSQL's own, left to it
    finally:
        os.umask(umask)  # this test process's, as it was
