"""The demo data the embedded stack creates once: a firm with its platform, key, verified representative
and a few sample dossiers. Every step is idempotent: `make run` again finds what it left."""

from __future__ import annotations

import asyncio
import contextlib
import io
import random
from dataclasses import dataclass
from uuid import UUID

import asyncpg
from PIL import Image, ImageDraw, ImageFont
from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.service import RPCError, RPCStatusCode

from config.settings import Settings
from domain.identifiers import LA_POSTE_SIREN, luhn_complete
from domain.models import ClientRepresentative, LegalRepresentative, Platform
from starter.kyc_runs import start_kyc_workflow
from store import dossiers, firms, kyc
from store.records import Firm, KycFile, KycSubmission
from workflows.kyc import kyc_workflow_id

DEMO_FIRM_NAME = "Cabinet Démo"
DEMO_FIRM_SIREN = "845123454"
DEMO_FIRM_ADDRESS = "12 rue de la Paix, 75002 Paris"
DEMO_PLATFORM = Platform(name="PA Démo", siren="552081317")
DEMO_REPRESENTATIVE = LegalRepresentative(
    first_name="Camille", last_name="Durand", email="camille.durand@cabinet-demo.example"
)
_DEMO_LOCK = 7233002  # advisory lock: two start-ups never create two demo firms

_COMPANIES = [  # name, (representative's first name, last name, position: some give none)
    ("Boulangerie Martin SARL", ("Sophie", "Martin", "Gérante")),
    ("Garage des Lilas SAS", ("Karim", "Benali", "Président")),
    ("Pharmacie du Centre", ("Claire", "Lefèvre", "Gérante")),
    ("Atelier Dupont Menuiserie", ("Julien", "Dupont", None)),
    ("Les Jardins de Provence SAS", ("Marion", "Roux", "Présidente")),
    ("Transports Moreau et Fils", ("Pierre", "Moreau", "Gérant")),
    ("Librairie Le Chat Lettré", ("Inès", "Garnier", None)),
    ("Cabinet Infirmier Fontaine", ("Lucas", "Fontaine", None)),
]


@dataclass(frozen=True)
class DemoFirm:
    firm: Firm
    api_key: str
    created: bool


async def ensure_demo_firm(db: asyncpg.Pool, api_key: str | None) -> DemoFirm:
    """Find or create "Cabinet Démo" with its Plateforme Agréée, and make `api_key` one of its keys.

    Without `api_key` a new random key is issued: the caller remembers it (only its hash is stored).
    A platform the user changed since is left as it is.
    """
    async with db.acquire() as conn, conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock($1)", _DEMO_LOCK)
        row = await conn.fetchrow(
            "SELECT * FROM firms WHERE name = $1 AND siren = $2 ORDER BY created_at LIMIT 1",
            DEMO_FIRM_NAME,
            DEMO_FIRM_SIREN,
        )
        created = row is None
        firm = (
            Firm.from_row(row)
            if row
            else await firms.create_firm(
                conn, name=DEMO_FIRM_NAME, siren=DEMO_FIRM_SIREN, address=DEMO_FIRM_ADDRESS
            )
        )
        if firm.platform is None:
            firm = await firms.set_platform(conn, firm.id, DEMO_PLATFORM)
        key = await firms.issue_api_key(conn, firm.id, api_key)
    return DemoFirm(firm=firm, api_key=key, created=created)


@dataclass(frozen=True)
class DemoReport:
    demo: DemoFirm
    counts: dict[str, int]  # dossiers by e-invoicing status
    representative: KycSubmission | None


async def prepare_demo(
    db: asyncpg.Pool,
    client: Client,
    settings: Settings,
    *,
    api_key: str | None,
    seed_dossiers: int,
    submit_identity: bool,
) -> DemoReport:
    """Everything the embedded stack shows at start; `submit_identity` only with the emulator."""
    demo = await ensure_demo_firm(db, api_key)
    await seed_demo_dossiers(db, demo.firm.id, seed_dossiers)
    if submit_identity:
        representative = await ensure_demo_representative(db, client, settings, demo.firm.id)
    else:  # never a specimen identity document to the real YouSign
        representative = await kyc.current_submission(db, demo.firm.id)
    rows = await db.fetch(
        "SELECT einvoicing_status, count(*) AS n FROM dossiers WHERE firm_id = $1 GROUP BY 1 ORDER BY 1",
        demo.firm.id,
    )
    return DemoReport(demo, {r["einvoicing_status"]: r["n"] for r in rows}, representative)


async def verification_outcome(db: asyncpg.Pool, firm_id: UUID, *, within: float = 600.0) -> str | None:
    """Wait for the pending verification of the firm's representative; its status, or None."""
    for _ in range(int(within)):
        await asyncio.sleep(1.0)
        with contextlib.suppress(asyncpg.PostgresError, OSError):
            current = await kyc.current_submission(db, firm_id)
            if current is not None and current.status != "pending":
                return current.status
    return None


def sample_siret(rng: random.Random) -> str:
    """A SIRET whose SIREN and 14 digits both pass Luhn (never La Poste's SIREN)."""
    while True:
        siren = luhn_complete(str(rng.randrange(10_000_000, 100_000_000)))
        if siren != LA_POSTE_SIREN:
            return luhn_complete(siren + f"{rng.randrange(1, 100):04d}")


def _email_domain(name: str) -> str:
    words = [w for w in name.lower().replace("'", " ").split() if w not in ("sas", "sarl", "et", "de", "du")]
    slug = "-".join(words[:3])
    table = str.maketrans("àâäçéèêëîïôöùûüÿ", "aaaceeeeiioouuuy")
    return "".join(c for c in slug.translate(table) if c.isalnum() or c == "-") + ".example"


def sample_dossiers(count: int, seed: int = 2026) -> list[dict]:
    """Sample clients; every 5th misses its SIRET and every 5th (offset) its representative."""
    rng = random.Random(seed)
    samples = []
    used: set[str] = set()  # a firm has one dossier per SIRET
    for i in range(count):
        name, (first, last, position) = _COMPANIES[i % len(_COMPANIES)]
        if i >= len(_COMPANIES):
            name = f"{name} {i // len(_COMPANIES) + 1}"
        siret = sample_siret(rng)
        while siret in used:
            siret = sample_siret(rng)
        used.add(siret)
        rep = ClientRepresentative(
            first_name=first,
            last_name=last,
            email=f"{first.lower()}@{_email_domain(name)}",
            position=position,
        )
        samples.append(
            {
                "name": name,
                "siret": None if i % 5 == 3 else siret,
                "legal_representative": None if i % 5 == 4 else rep,
                "external_ref": f"DEMO-{i + 1:04d}",
            }
        )
    return samples


async def seed_demo_dossiers(db: asyncpg.Pool, firm_id: UUID, count: int) -> int:
    """Create `count` sample dossiers, only for a firm that has none yet; return how many were made."""
    if count <= 0 or await db.fetchval("SELECT EXISTS (SELECT 1 FROM dossiers WHERE firm_id = $1)", firm_id):
        return 0
    for sample in sample_dossiers(count):
        await dossiers.create_dossier(db, firm_id, **sample)
    return count


def specimen_jpeg(representative: LegalRepresentative = DEMO_REPRESENTATIVE) -> bytes:
    """A made-up passport page, big enough for YouSign's checks (at least 320 x 256)."""
    image = Image.new("RGB", (900, 600), (226, 232, 240))
    draw = ImageDraw.Draw(image)
    try:
        font = ImageFont.load_default(size=36)
    except TypeError:  # Pillow without FreeType
        font = ImageFont.load_default()
    draw.rectangle((30, 30, 870, 570), outline=(30, 60, 110), width=6)
    draw.rectangle((60, 140, 300, 460), fill=(190, 200, 215))
    lines = ["PASSEPORT - SPÉCIMEN", representative.last_name.upper(), representative.first_name, "FRA"]
    for n, text in enumerate(lines):
        draw.text((340, 150 + 70 * n), text, fill=(20, 30, 60), font=font)
    out = io.BytesIO()
    image.save(out, format="JPEG", quality=85)
    return out.getvalue()


async def _kyc_workflow_running(client: Client, firm_id: UUID) -> bool:
    try:
        description = await client.get_workflow_handle(kyc_workflow_id(firm_id)).describe()
    except RPCError as error:
        if error.status == RPCStatusCode.NOT_FOUND:
            return False
        raise
    return description.status == WorkflowExecutionStatus.RUNNING


async def ensure_demo_representative(
    db: asyncpg.Pool, client: Client, settings: Settings, firm_id: UUID
) -> KycSubmission:
    """Submit the demo representative's identity document, as `PUT /v1/firm/legal-representative` does.

    Done once: a later submission (by the user, through the API) is left alone. A pending one whose
    workflow is gone (Temporal data deleted) is submitted again, superseding it.
    """
    current = await kyc.current_submission(db, firm_id)
    if current is not None and (current.status != "pending" or await _kyc_workflow_running(client, firm_id)):
        return current
    representative = current.representative if current else DEMO_REPRESENTATIVE
    submission = await kyc.create_submission(
        db,
        firm_id,
        representative,
        "passport",
        [KycFile(side="front", content_type="image/jpeg", content=specimen_jpeg(representative))],
    )
    await start_kyc_workflow(client, settings, submission)
    return submission
