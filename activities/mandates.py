"""Activities over the database, the PDF renderer and email: everything a mandate needs but YouSign."""

from __future__ import annotations

import asyncpg
import structlog
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.mandate_document import render_and_store
from activities.models import (
    GeneratedDocument,
    MandateRef,
    RecordStatusInput,
    ReminderInput,
    SignatureRequestRef,
)
from clients.mailer import Mailer
from domain.errors import Conflict
from domain.status import MandateStatus
from store import dossiers, firms, mandates

log = structlog.get_logger(__name__)


class MandateActivities:
    """Built once per worker with its pool (and mailer); each method is one activity."""

    def __init__(self, db: asyncpg.Pool, mailer: Mailer | None) -> None:
        self._db = db
        self._mailer = mailer

    @activity.defn
    async def generate_mandate_document(self, ref: MandateRef) -> GeneratedDocument:
        """Render the mandate PDF and store it; the firm can preview it while it is a draft."""
        mandate = await mandates.get_mandate(self._db, ref.mandate_id)
        if mandate.status != MandateStatus.DRAFT:  # e.g. set aside when its start seemed to fail
            raise ApplicationError(
                f"the mandate is {mandate.status}, not a draft", type="Conflict", non_retryable=True
            )
        dossier, _ = await dossiers.get_dossier(self._db, mandate.firm_id, mandate.dossier_id)
        _, generated = await render_and_store(self._db, mandate, dossier)
        return generated

    @activity.defn
    async def record_mandate_status(self, change: RecordStatusInput) -> None:
        try:
            await mandates.transition(
                self._db,
                change.mandate_id,
                change.status,
                cause=change.cause,
                at=change.at,
                detail=change.detail,
                **change.fields(),
            )
        except Conflict as conflict:
            # The store refuses to move a final state back; the workflow must know, not retry.
            raise ApplicationError(str(conflict), type="Conflict", non_retryable=True) from conflict
        log.info(
            "mandate status recorded",
            mandate_id=str(change.mandate_id),
            status=change.status.value,
            cause=change.cause,
        )

    @activity.defn
    async def recorded_signature_request(self, ref: MandateRef) -> SignatureRequestRef | None:
        """The YouSign request recorded for the mandate, if its send got that far."""
        found = (await mandates.get_mandate(self._db, ref.mandate_id)).signature_request_id
        return SignatureRequestRef(signature_request_id=found) if found else None

    @activity.defn
    async def record_unconfirmed_reminder(self, reminder: ReminderInput) -> None:
        """A reminder whose YouSign call timed out: it may have reached the client, so the day is spent."""
        await mandates.record_reminder(self._db, reminder.mandate_id, reminder.sent_at)

    @activity.defn
    async def send_signed_confirmation(self, ref: MandateRef) -> str:
        """Email the client's representative that the mandate is signed, with the signed PDF."""
        mandate = await mandates.get_mandate(self._db, ref.mandate_id)
        dossier, _ = await dossiers.get_dossier(self._db, mandate.firm_id, mandate.dossier_id)
        firm = await firms.get_firm(self._db, mandate.firm_id)
        rep = dossier.legal_representative
        if self._mailer is None or rep is None:
            log.warning("confirmation email not sent: no SMTP_URL", mandate_id=str(mandate.id))
            return ""
        signed = await mandates.get_document(self._db, mandate.id, "signed")
        # Without the copy (YouSign's download failed for days), the firm has it to ask for.
        where = (
            "en pièce jointe"
            if signed
            else f"auprès du cabinet {firm.name}, qui vous l'adressera sur demande"
        )
        body = (
            f"Bonjour {rep.first_name} {rep.last_name},\n\n"
            f"Le mandat n° {mandate.number} confiant au cabinet {firm.name} la désignation de la "
            f"plateforme de réception des factures électroniques de {dossier.name} a bien été signé.\n"
            f"Vous trouverez le document signé {where}. Vous pouvez révoquer ce mandat à tout "
            "moment par écrit auprès du cabinet.\n\nCordialement,\n" + firm.name
        )
        return await self._mailer.send(
            to=str(rep.email),
            subject=f"Mandat de facturation électronique signé - {dossier.name}",
            body=body,
            attachment=(f"mandat-{mandate.number}.pdf", signed) if signed else None,
        )
