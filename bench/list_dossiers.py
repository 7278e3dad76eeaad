"""Latency of `GET /v1/dossiers` over HTTP for one firm with 10,000 dossiers.

    python bench/list_dossiers.py [--dossiers 10000] [--requests 500] [--explain]

Starts what it needs: an embedded PostgreSQL in a temporary directory (or DATABASE_URL when set:
then it adds a new firm and its dossiers there, and leaves them), and the API served by uvicorn on
loopback in a child process (so client and server do not share a GIL). Temporal is not involved:
listing reads PostgreSQL only, so the app gets no Temporal client.

Each case sends its requests one after the other on a keep-alive connection (latency, not
throughput) after a short warm-up, and reports p50, p95, p99 and max. `--explain` also prints
EXPLAIN (ANALYZE, BUFFERS) of the exact SQL `store.dossiers.list_dossiers` sends for each case.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import platform
import random
import shlex
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from domain.identifiers import luhn_complete  # noqa: E402
from domain.status import DossierStatus  # noqa: E402
from store import dossiers, firms  # noqa: E402
from store.cursors import encode_cursor  # noqa: E402
from store.database import create_pool, embedded_postgres, migrate  # noqa: E402

TARGET_P99_MS = 50.0
PLATFORM_SIREN = "552081317"

# (dossier status, share, live mandate status or None): most dossiers are ready, as a firm's book is
# once its clients' data is in; some of the ready ones already have a draft.
STATUS_MIX: list[tuple[str, float, str | None]] = [
    ("ready_for_mandate", 0.50, None),
    ("ready_for_mandate", 0.06, "draft"),
    ("missing_information", 0.14, None),
    ("mandate_pending", 0.12, "pending"),
    ("ready_for_designation", 0.12, "signed"),
    ("mandate_refused", 0.04, "refused"),
    ("mandate_expired", 0.02, "expired"),
]
FIRST_NAMES = ["Jeanne", "Paul", "Marie", "Louis", "Camille", "Hugo", "Léa", "Arthur", "Chloé", "Jules"]
LAST_NAMES = [
    "Martin",
    "Bernard",
    "Dubois",
    "Thomas",
    "Robert",
    "Richard",
    "Petit",
    "Durand",
    "Leroy",
    "Moreau",
]
TRADES = [
    "Boulangerie",
    "Garage",
    "Pharmacie",
    "Cabinet",
    "Menuiserie",
    "Plomberie",
    "Librairie",
    "Fromagerie",
]
FORMS = ["SAS", "SARL", "EURL", "SA", "SCI", "SNC"]
CITIES = ["Paris", "Lyon", "Nantes", "Lille", "Rennes", "Bordeaux", "Toulouse", "Nice", "Dijon", "Brest"]


def luhn_siret(rng: random.Random) -> str:
    """A SIRET whose SIREN (9 digits) and whole 14 digits both pass Luhn, as INSEE's do."""
    siren = luhn_complete(f"{rng.randrange(10**7, 10**8):08d}")
    return luhn_complete(siren + f"{rng.randrange(0, 10**4):04d}")


def _pick_status(rng: random.Random) -> tuple[str, str | None]:
    roll, total = rng.random(), 0.0
    for status, share, mandate in STATUS_MIX:
        total += share
        if roll < total:
            return status, mandate
    return STATUS_MIX[0][0], STATUS_MIX[0][2]


async def fill(db, firm_id: uuid.UUID, count: int, seed: int = 7) -> dict[str, int]:
    """COPY `count` dossiers (and their mandates) for the firm; returns the count per status."""
    rng = random.Random(seed)
    start = datetime(2025, 1, 6, 8, tzinfo=UTC)
    dossier_rows, mandate_rows, counts = [], [], dict.fromkeys(DossierStatus, 0)
    for i in range(count):
        status, mandate_status = _pick_status(rng)
        counts[DossierStatus(status)] += 1
        dossier_id = uuid.UUID(int=rng.getrandbits(128), version=4)
        created = start + timedelta(minutes=47 * i, seconds=rng.randrange(60))
        updated = created + timedelta(days=rng.randrange(0, 30))
        name = (
            f"{rng.choice(TRADES)} {rng.choice(LAST_NAMES)} {rng.choice(CITIES)} {rng.choice(FORMS)} {i:05d}"
        )
        missing = status == "missing_information"
        no_siret = missing and rng.random() < 0.5
        siret = None if no_siret else luhn_siret(rng)
        first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
        has_rep = not missing or no_siret  # missing either the SIRET or the representative
        rep = (
            (first, last, None, f"{first.lower()}.{last.lower()}.{i}@client.example")
            if has_rep
            else (None,) * 4
        )
        dossier_rows.append(
            (dossier_id, firm_id, name, siret, *rep, f"EXT-{i:06d}", status, created, updated)
        )
        if mandate_status is None:
            continue
        seq = 1
        if mandate_status == "draft" and rng.random() < 0.2:  # refused once, deleted, then redone
            mandate_rows.append(_mandate(rng, dossier_id, firm_id, siret, seq, "deleted", created))
            seq += 1
        mandate_rows.append(_mandate(rng, dossier_id, firm_id, siret, seq, mandate_status, created))
    async with db.acquire() as conn, conn.transaction():
        await conn.copy_records_to_table(
            "dossiers",
            records=dossier_rows,
            columns=[
                "id", "firm_id", "name", "siret", "rep_first_name", "rep_last_name", "rep_birth_name",
                "rep_email", "external_ref", "einvoicing_status", "created_at", "updated_at",
            ],
        )  # fmt: skip
        await conn.copy_records_to_table(
            "mandates",
            records=mandate_rows,
            columns=[
                "id", "dossier_id", "firm_id", "seq", "number", "workflow_id", "status",
                "signature_request_id", "created_at", "sent_at", "expires_at", "signed_at", "refused_at",
                "expired_at", "deleted_at", "updated_at",
            ],
        )  # fmt: skip
        await conn.execute(
            "UPDATE dossiers d SET mandate_count = m.n FROM (SELECT dossier_id, count(*) AS n FROM mandates"
            " WHERE firm_id = $1 GROUP BY 1) m WHERE d.id = m.dossier_id",
            firm_id,
        )
        await conn.execute("ANALYZE dossiers; ANALYZE mandates")
    return {s.value: n for s, n in counts.items()}


def _mandate(rng, dossier_id, firm_id, siret, seq, status, dossier_created) -> tuple[Any, ...]:
    created = dossier_created + timedelta(days=1 + seq)
    sent = created + timedelta(hours=2) if status not in ("draft", "deleted") else None
    expires = sent + timedelta(days=30) if sent else None
    decided = sent + timedelta(days=rng.randrange(1, 20)) if sent else None
    number = f"{siret[:9]}_{PLATFORM_SIREN}_{created:%Y%m%d}_{seq:02d}"
    return (
        uuid.UUID(int=rng.getrandbits(128), version=4),
        dossier_id,
        firm_id,
        seq,
        number,
        f"mandate-{dossier_id}-{seq}",
        status,
        f"sr-{uuid.UUID(int=rng.getrandbits(128), version=4)}" if sent else None,
        created,
        sent,
        expires,
        decided if status == "signed" else None,
        decided if status == "refused" else None,
        expires if status == "expired" else None,
        created + timedelta(days=3) if status == "deleted" else None,
        decided or created,
    )


# ---------------------------------------------------------------------------------------------
# The server, in a child process: `--serve PORT` with DATABASE_URL in its environment.


async def _serve(port: int) -> None:
    import uvicorn

    from config.settings import Settings
    from starter.api.app import create_app

    settings = Settings()
    db = await create_pool(os.environ["DATABASE_URL"], max_size=10)
    # No Temporal connection: listing needs the pool and settings only.
    app = create_app(settings, db=db)
    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, log_level="warning", access_log=False, lifespan="off"
    )
    await uvicorn.Server(config).serve()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _start_server(database_url: str) -> tuple[subprocess.Popen, str]:
    port = _free_port()
    env = {**os.environ, "DATABASE_URL": database_url}
    process = subprocess.Popen([sys.executable, __file__, "--serve", str(port)], env=env, cwd=ROOT)
    base_url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the API process exited with {process.returncode}")
        try:
            if httpx.get(f"{base_url}/healthz", timeout=1).status_code == 200:
                return process, base_url
        except httpx.TransportError:
            time.sleep(0.05)
    process.terminate()
    raise RuntimeError("the API did not start within 30 s")


# ---------------------------------------------------------------------------------------------
# Measurement.


def percentiles(samples_ms: list[float]) -> dict[str, float]:
    cuts = statistics.quantiles(samples_ms, n=100, method="inclusive")
    return {"p50": cuts[49], "p95": cuts[94], "p99": cuts[98], "max": max(samples_ms)}


async def measure(
    http: httpx.AsyncClient, n: int, next_params: Callable[[], dict], check=None
) -> list[float]:
    samples = []
    for _ in range(n):
        params = next_params()
        began = time.perf_counter()
        answer = await http.get("/v1/dossiers", params=params)
        samples.append((time.perf_counter() - began) * 1000)
        if answer.status_code != 200:
            raise RuntimeError(f"GET /v1/dossiers {params} -> {answer.status_code}: {answer.text[:300]}")
        if check:
            check(answer.json())
    return samples


class CursorWalk:
    """Pages through the whole list with the cursor, starting over at the end."""

    def __init__(self) -> None:
        self.cursor: str | None = None
        self.pages = 0

    def params(self) -> dict:
        return {"cursor": self.cursor} if self.cursor else {}

    def advance(self, page: dict) -> None:
        self.cursor = page["next_cursor"]
        self.pages += 1


class Explaining:
    """Stands in for the pool: EXPLAIN ANALYZEs the query `list_dossiers` sends, then runs it."""

    def __init__(self, db) -> None:
        self.db = db
        self.plans: list[str] = []

    async def fetch(self, sql: str, *args):
        rows = await self.db.fetch("EXPLAIN (ANALYZE, BUFFERS) " + sql, *args)
        self.plans.append("\n".join(r[0] for r in rows))
        return await self.db.fetch(sql, *args)


async def explain_case(db, firm_id, label: str, params: dict) -> None:
    explaining = Explaining(db)
    status = params.get("status", [])
    statuses = [DossierStatus(s) for s in ([status] if isinstance(status, str) else status)] or None
    await dossiers.list_dossiers(
        explaining, firm_id, statuses=statuses, search=params.get("search"), cursor=params.get("cursor")
    )
    print(f"\n--- EXPLAIN ANALYZE: {label} {params}\n{explaining.plans[0]}")


async def run(args: argparse.Namespace) -> int:
    started = time.monotonic()
    # PostgreSQL stops before its temporary directory goes.
    with tempfile.TemporaryDirectory(prefix="bench-pg-") as tmp, contextlib.ExitStack() as stack:
        database_url = os.environ.get("DATABASE_URL") or stack.enter_context(
            embedded_postgres(Path(tmp) / "pg")
        )
        db = await create_pool(database_url, max_size=4)
        server = None
        try:
            await migrate(db)
            version = await db.fetchval("SHOW server_version")
            firm = await firms.create_firm(db, name="Cabinet Bench", siren="732829320", address="Paris")
            key = await firms.issue_api_key(db, firm.id)
            filled_at = time.monotonic()
            counts = await fill(db, firm.id, args.dossiers)
            fill_seconds = time.monotonic() - filled_at
            server, base_url = _start_server(database_url)
            search_term = "Fromagerie"
            siret_prefix = await db.fetchval(
                "SELECT substr(siret, 1, 11) FROM dossiers WHERE firm_id = $1 AND siret IS NOT NULL"
                " ORDER BY created_at DESC LIMIT 1",
                firm.id,
            )
            walk = CursorWalk()
            cases: list[tuple[str, Callable[[], dict], Any]] = [
                ("no filter", dict, None),
                ("status=mandate_pending", lambda: {"status": "mandate_pending"}, None),
                (
                    "status=mandate_refused&status=mandate_expired",
                    lambda: {"status": ["mandate_refused", "mandate_expired"]},
                    None,
                ),
                (f"search={search_term}", lambda: {"search": search_term}, None),
                ("search=<SIRET prefix, 1 match>", lambda: {"search": siret_prefix}, None),
                ("cursor walk (all pages)", walk.params, walk.advance),
            ]
            results = []
            async with httpx.AsyncClient(
                base_url=base_url, headers={"Authorization": f"Bearer {key}"}, timeout=30
            ) as http:
                for label, params, check in cases:
                    await measure(http, args.warmup, params, check)
                    if check == walk.advance:
                        walk.cursor, walk.pages = None, 0
                    results.append((label, percentiles(await measure(http, args.requests, params, check))))
            missed = _print_results(args, version, counts, fill_seconds, walk.pages, results)
            if args.explain:
                for label, params, _ in cases[:-1]:
                    await explain_case(db, firm.id, label, params())
                deep = await _deep_cursor(db, firm.id, args.dossiers)
                await explain_case(db, firm.id, "cursor walk (deep page)", {"cursor": deep})
        finally:
            if server is not None:
                server.terminate()
                server.wait(timeout=10)
            await db.close()
    print(f"\ntotal {time.monotonic() - started:.0f} s")
    return 1 if missed else 0


def _print_results(args, version: str, counts: dict, fill_seconds: float, pages: int, results) -> int:
    command = " ".join(shlex.quote(a) for a in [sys.executable, *sys.argv])
    print(f"\ncommand: {command}")
    print(
        f"machine: {os.cpu_count()} cores, {platform.machine()}, {platform.system()} {platform.release()};"
        f" Python {platform.python_version()}; PostgreSQL {version}"
        f" ({'DATABASE_URL' if os.environ.get('DATABASE_URL') else 'embedded'})"
    )
    mix = ", ".join(f"{s} {n}" for s, n in counts.items())
    print(f"data: {args.dossiers} dossiers for one firm ({mix}); filled in {fill_seconds:.1f} s")
    print(
        f"load: {args.requests} sequential requests per case after {args.warmup} warm-up, limit 50,"
        f" one keep-alive connection; cursor walk covered {pages} pages"
    )
    heads = "".join(f"{h:>8}" for h in ("p50 ms", "p95 ms", "p99 ms", "max ms"))
    print(f"\n{'case':<48}{heads}  p99 < {TARGET_P99_MS:.0f} ms")
    missed = 0
    for label, p in results:
        ok = p["p99"] < TARGET_P99_MS
        missed += not ok
        figures = "".join(f"{p[k]:>8.1f}" for k in ("p50", "p95", "p99", "max"))
        print(f"{label:<48}{figures}  {'yes' if ok else 'NO'}")
    return missed


async def _deep_cursor(db, firm_id, count: int) -> str:
    row = await db.fetchrow(
        "SELECT created_at, id FROM dossiers WHERE firm_id = $1 ORDER BY created_at, id OFFSET $2 LIMIT 1",
        firm_id,
        max(0, count - 100),
    )
    return encode_cursor(row["created_at"], row["id"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dossiers", type=int, default=10_000)
    parser.add_argument("--requests", type=int, default=500, help="measured requests per case")
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--explain", action="store_true", help="print EXPLAIN ANALYZE of each case's query")
    parser.add_argument("--serve", type=int, metavar="PORT", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        asyncio.run(_serve(args.serve))
        return
    sys.exit(asyncio.run(run(args)))


if __name__ == "__main__":
    main()
