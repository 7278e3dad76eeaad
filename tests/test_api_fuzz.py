"""Schemathesis fuzzes every operation of the API's own OpenAPI document, over real HTTP, as a real firm.

The app runs with the real stack behind it: PostgreSQL, the Temporal dev server with the production
workers, and the YouSign emulator. Schemathesis sends its requests with blocking `requests` calls, so
that stack runs on an event loop of its own in a background thread while the test thread calls it.

Bounded and deterministic: FUZZ_EXAMPLES generated examples per operation (20 by default; `make fuzz`
runs 200), derandomized, plus Schemathesis's explicit examples and coverage cases; no shrinking.
Every Schemathesis check runs, plus our problem-details contract. A 5xx always fails. The failures the
OpenAPI document causes (answers api.md documents but the document does not declare yet) and two
reported routing quirks are matched by the rules in GAPS: each is counted and listed in the report
printed at the end of the module, never dropped silently; anything else fails.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import threading
from collections import Counter, defaultdict
from collections.abc import AsyncIterator, Callable, Iterator
from concurrent.futures import Future
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis.openapi.checks import (
    RejectedPositiveData,
    UndefinedContentType,
    UndefinedStatusCode,
)
from temporalio.client import Client

from clients.yousign import YouSignClient
from clients.yousign_webhooks import SIGNATURE_HEADER, sign_body
from starter.api.app import create_app
from store import dossiers, firms
from store.database import create_pool, migrate
from store.firms import create_firm
from tests.api_support import serving_api
from tests.conftest import WEBHOOK_SECRET
from tests.helpers import establishment_siret, test_settings, verified_firm_with_dossier
from tests.workflow_support import generate_mandate, running_workers, send_and_wait_pending
from yousign_emulator import EmulatorSettings, running_emulator

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "20"))
FUZZ_SETTINGS = settings(
    max_examples=EXAMPLES,
    derandomize=True,
    deadline=None,
    phases=[Phase.explicit, Phase.generate],  # no shrinking: a failure is reported as found, with its curl
    suppress_health_check=list(HealthCheck),
    print_blob=False,
)
PROBLEM = "application/problem+json"

# The fuzzing firm's API key, given to Schemathesis as the document's bearer scheme so that its own
# auth cases (no key, a wrong key) still go out without it. Random per run: a shared TEST_DATABASE_URL
# keeps the keys of earlier runs.
FIRM_KEY = "fuzz_" + secrets.token_urlsafe(24)

# What /openapi.json serves (FastAPI serves `app.openapi()`); test_served_schema_is_the_fuzzed_one
# checks it against the running server.
OPENAPI = create_app(test_settings()).openapi()
schema = schemathesis.openapi.from_dict(
    OPENAPI, config=schemathesis.Config.from_dict({"auth": {"openapi": {"HTTPBearer": {"bearer": FIRM_KEY}}}})
)


@dataclass
class FuzzTarget:
    base_url: str
    dossier_ids: dict[str, str]  # role -> id
    mandate_ids: list[str]


# ---------------------------------------------------------------------------------------------
# Reaching past the 404s: positive cases of the dossier routes mostly draw a real dossier of the
# fuzzing firm (ready, incomplete, with a draft mandate, with a pending one) rather than a random id
# (which negative cases and the rest still cover). DELETE leaves the draft alone, so that /send,
# fuzzed after it, still finds one to send.

SEEDED: dict[str, str] = {}  # role -> dossier id, filled by the `target` fixture


@schema.hook
def flatmap_case(context, case):
    positive = case.meta is not None and case.meta.generation.mode.is_positive
    seeded = [i for role, i in SEEDED.items() if not (case.method == "DELETE" and role == "draft")]
    if "dossier_id" not in case.path_parameters or not positive or not seeded:
        return st.just(case)
    return st.sampled_from([*seeded, None]).map(lambda chosen: _with_dossier(case, chosen))


def _with_dossier(case, dossier_id: str | None):
    if dossier_id is not None:
        case.path_parameters["dossier_id"] = dossier_id
    return case


# ---------------------------------------------------------------------------------------------
# Known gaps: failures matched here are counted and reported, not failed. Remove a rule once the
# report says "not seen" for it (`make fuzz`).


def problem_of(response) -> dict | None:
    """The RFC 9457 body of an error answer, or None when the answer is anything else."""
    content_type = (response.headers.get("content-type") or [""])[0]  # lowercase keys, list values
    if response.status_code < 400 or not content_type.startswith(PROBLEM):
        return None
    try:
        body = json.loads(response.content)
    except ValueError:
        return None
    return body if isinstance(body, dict) and body.get("status") == response.status_code else None


# Statuses api.md documents as problem answers (400: FastAPI's answer to a body it cannot decode).
PROBLEM_STATUSES = frozenset({400, 401, 404, 409, 413, 422, 429, 503})

# Fields whose rules JSON Schema cannot say (Luhn checksums, name rules, what the mandate PDF can
# print, file contents, an opaque cursor, "a SIREN or a matricule"): a schema-valid value may be
# refused with a 422 naming them.
RULE_FIELDS: dict[str, tuple[str, ...]] = {
    "GET /v1/dossiers": ("cursor",),
    "GET /v1/bulk-sends": ("cursor",),
    "POST /v1/dossiers": ("siret", "legal_representative", "name", "previous_platform"),
    "PATCH /v1/dossiers/{dossier_id}": ("siret", "legal_representative", "name", "previous_platform"),
    "PUT /v1/firm/platform": ("body", "siren", "matricule", "name"),  # "body": the cross-field rule
    "PUT /v1/firm/legal-representative": (
        "front",
        "back",
        "first_name",
        "last_name",
        "birth_name",
        "email",
    ),
}
# Operations whose request body the document declares as any object, while the service expects a
# Temporal `Payloads` message: schema-valid bodies are refused with a 422 without `errors`.
ANY_OBJECT_BODIES = frozenset({"POST /codec/encode", "POST /codec/decode"})


def _rule_fields_only(case, response) -> bool:
    problem = problem_of(response)
    if problem is None or response.status_code != 422:
        return False
    if case.operation.label in ANY_OBJECT_BODIES:
        return True
    fields = [e.get("field", "") for e in problem.get("errors", [])]
    allowed = RULE_FIELDS.get(case.operation.label, ())
    return bool(fields) and all(f.split(".")[0] in allowed for f in fields)


Rule = Callable[[object, object, object], bool]
GAPS: dict[str, Rule] = {
    "OpenAPI: problem status not declared": lambda failure, case, response: (
        isinstance(failure, UndefinedStatusCode)
        and response.status_code in PROBLEM_STATUSES
        and problem_of(response) is not None
    ),
    "OpenAPI: 4xx declared application/json, served application/problem+json": (
        lambda failure, case, response: (
            isinstance(failure, UndefinedContentType)
            and response.status_code < 500
            and problem_of(response) is not None
        )
    ),
    "OpenAPI: rule JSON Schema cannot express, refused with a 422": (
        lambda failure, case, response: (
            isinstance(failure, RejectedPositiveData) and _rule_fields_only(case, response)
        )
    ),
}
MATCHED: dict[str, Counter] = defaultdict(Counter)  # rule -> (operation, status) -> failures
STATUSES: dict[str, Counter] = defaultdict(Counter)  # operation -> status -> cases


@schema.hook
def filter_failure(context, failure, case, response):
    for name, rule in GAPS.items():
        if rule(failure, case, response):
            MATCHED[name][(case.operation.label, response.status_code)] += 1
            return False
    return True


def problem_details(ctx, response, case):
    """api.md: every error is an RFC 9457 problem; a /v1 validation error names each bad field."""
    if response.status_code < 400:
        return None
    problem = problem_of(response)
    assert problem is not None, f"{response.status_code} is not a problem+json with a matching status"
    assert all(isinstance(problem.get(k), str) for k in ("type", "title", "detail")), problem
    if response.status_code == 422 and case.operation.path.startswith("/v1/"):
        errors = problem.get("errors")
        assert errors and all({"field", "message"} <= set(e) for e in errors), problem
    return None


# ---------------------------------------------------------------------------------------------
# The stack, on its own event loop in a background thread.


@asynccontextmanager
async def _stack(database_url: str, dev_client: Client, smtp_url: str) -> AsyncIterator[FuzzTarget]:
    settings = test_settings(yousign_webhook_secret=WEBHOOK_SECRET)
    emulator_settings = EmulatorSettings(
        api_key="test-key", webhook_secret=WEBHOOK_SECRET, kyc_delay_seconds=0.2
    )
    db = await create_pool(database_url, max_size=10)
    try:
        await migrate(db)
        temporal = await Client.connect(
            dev_client.service_client.config.target_host,
            namespace=dev_client.namespace,
            data_converter=dev_client.data_converter,
        )
        async with (
            running_emulator(emulator_settings) as emulator,
            YouSignClient(emulator.api_base_url, "test-key", timeout=5.0) as yousign,
            running_workers(temporal, settings, db, yousign, smtp_url=smtp_url),
            serving_api(settings, db, temporal) as base_url,
        ):
            emulator.state.set_webhook_urls([f"{base_url}/v1/webhooks/yousign"])
            firm = await create_firm(db, name="Cabinet Fuzz", siren="732829320", address="Paris")
            ready = await verified_firm_with_dossier(db, firm)
            incomplete = await dossiers.create_dossier(
                db, firm.id, name="Sans SIRET", siret=None, legal_representative=None
            )
            draft_dossier = await verified_firm_with_dossier(db, firm, establishment_siret(1))
            draft = await generate_mandate(temporal, settings, db, draft_dossier)
            pending_dossier = await verified_firm_with_dossier(db, firm, establishment_siret(2))
            pending = await generate_mandate(temporal, settings, db, pending_dossier)
            await send_and_wait_pending(pending)
            await firms.issue_api_key(db, firm.id, key=FIRM_KEY)
            yield FuzzTarget(
                base_url,
                {
                    "ready": str(ready.id),
                    "incomplete": str(incomplete.id),
                    "draft": str(draft_dossier.id),
                    "pending": str(pending_dossier.id),
                },
                [str(draft.mandate.id), str(pending.mandate.id)],
            )
            emulator.state.set_webhook_urls([])
    finally:
        await db.close()


@contextmanager
def stack_in_thread(*args) -> Iterator[FuzzTarget]:
    """Run `_stack(*args)` on its own event loop in a thread until the block exits."""
    ready: Future[FuzzTarget] = Future()
    stopping: Future[tuple[asyncio.AbstractEventLoop, asyncio.Event]] = Future()

    async def main() -> None:
        stop = asyncio.Event()
        stopping.set_result((asyncio.get_running_loop(), stop))
        try:
            async with _stack(*args) as target:
                ready.set_result(target)
                await stop.wait()
        except BaseException as error:
            if not ready.done():
                ready.set_exception(error)
            raise

    thread = threading.Thread(target=asyncio.run, args=(main(),), name="fuzz-stack", daemon=True)
    thread.start()
    try:
        yield ready.result(timeout=120)
    finally:
        loop, stop = stopping.result(timeout=10)
        if thread.is_alive():
            loop.call_soon_threadsafe(stop.set)
        thread.join(timeout=60)


@pytest.fixture(scope="module")
def target(request, database_url, dev_env, smtp_sink) -> Iterator[FuzzTarget]:
    with stack_in_thread(database_url, dev_env.client, smtp_sink.url) as target:
        SEEDED.update(target.dossier_ids)
        try:
            yield target
        finally:
            SEEDED.clear()
            _report(request.config)


def _report(config: pytest.Config) -> None:
    """Cases and statuses per operation, and what each gap rule matched (per operation and status
    with -v or FUZZ_EXAMPLES set, as `make fuzz` does)."""
    detailed = config.get_verbosity() > 0 or "FUZZ_EXAMPLES" in os.environ
    lines = [f"Schemathesis: {EXAMPLES} generated examples per operation (FUZZ_EXAMPLES), derandomized"]
    for operation, counts in STATUSES.items():
        statuses = " ".join(f"{status}x{n}" for status, n in sorted(counts.items()))
        lines.append(f"  {operation:<52} {sum(counts.values()):>5} cases  {statuses}")
    total = sum(sum(c.values()) for c in STATUSES.values())
    lines.append(f"  {len(STATUSES)} operations, {total} cases")
    for name in GAPS:
        matched = MATCHED.get(name, Counter())
        operations = {operation for operation, _ in matched}
        seen = f"{sum(matched.values())} failures on {len(operations)} operations" if matched else "not seen"
        lines.append(f"gap: {name}: {seen}")
        if detailed:
            for (operation, status), n in sorted(matched.items()):
                lines.append(f"    {operation:<52} {status}  ({n} failures)")
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    capture = config.pluginmanager.get_plugin("capturemanager")
    if reporter is not None and capture is not None:
        with capture.global_and_fixture_disabled():  # module teardown runs inside the last test's capture
            reporter.write_line("")
            for line in lines:
                reporter.write_line(line)


# ---------------------------------------------------------------------------------------------
# The tests.


@schema.parametrize()
@FUZZ_SETTINGS
def test_api(case, target: FuzzTarget):
    response = case.call_and_validate(base_url=target.base_url, additional_checks=[problem_details])
    STATUSES[case.operation.label][response.status_code] += 1


def test_served_schema_is_the_fuzzed_one(target: FuzzTarget):
    assert requests.get(f"{target.base_url}/openapi.json", timeout=10).json() == OPENAPI


EVENT_NAMES = [
    "signature_request.done",
    "signature_request.declined",
    "signature_request.expired",
    "signature_request.activated",
    "signer.done",
    "verification.identity_document.done",
]


def _event_bodies(mandate_ids: list[str]) -> st.SearchStrategy[bytes]:
    """Raw bytes, any JSON, and YouSign-shaped events about our mandates or about nothing of ours."""
    text = st.text(max_size=40)
    ids = st.one_of(text, st.uuids().map(str), st.sampled_from(mandate_ids))
    json_values = st.recursive(
        st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | text,
        lambda inner: st.lists(inner, max_size=4) | st.dictionaries(text, inner, max_size=4),
        max_leaves=12,
    )
    event = st.fixed_dictionaries(
        {
            "event_id": st.one_of(text, st.uuids().map(str)),
            "event_name": st.one_of(st.sampled_from(EVENT_NAMES), text),
            "event_time": st.one_of(text, st.integers().map(str)),
            "data": st.one_of(
                st.fixed_dictionaries(
                    {"signature_request": st.fixed_dictionaries({"id": ids, "external_id": ids})}
                ),
                st.fixed_dictionaries({"identity_document": st.fixed_dictionaries({"id": ids})}),
                st.dictionaries(text, json_values, max_size=3),
            ),
        }
    )
    return st.one_of(
        st.binary(max_size=200),
        json_values.map(lambda v: json.dumps(v).encode()),
        event.map(lambda v: json.dumps(v).encode()),
    )


@settings(FUZZ_SETTINGS, max_examples=3 * EXAMPLES)
@given(data=st.data())
def test_webhook(data, target: FuzzTarget):
    """Unsigned or wrongly signed: 401. Signed with the secret, whatever the body: never a 5xx."""
    body = data.draw(_event_bodies(target.mandate_ids), label="body")
    signing = data.draw(st.sampled_from(["valid", "no", "wrong"]), label="signature")
    headers = {"Content-Type": "application/json"}
    if signing == "valid":
        headers[SIGNATURE_HEADER] = sign_body(WEBHOOK_SECRET, body)
    elif signing == "wrong":
        headers[SIGNATURE_HEADER] = sign_body("not-the-secret", body)
    response = requests.post(f"{target.base_url}/v1/webhooks/yousign", data=body, headers=headers, timeout=30)
    STATUSES[f"POST /v1/webhooks/yousign ({signing} signature)"][response.status_code] += 1
    if signing != "valid":
        assert response.status_code == 401, response.text
    else:
        assert response.status_code in (200, 400), (response.status_code, response.text, body)
        if response.status_code == 200:
            assert response.json()["status"] in ("accepted", "duplicate", "ignored")
    if response.status_code >= 400:
        assert response.headers["content-type"].startswith(PROBLEM)
