"""Activities wrapping YouSign: each one resumable, with YouSign's errors mapped to retry decisions."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from uuid import UUID

import asyncpg
import structlog
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.mandate_document import date_mention_under, render_and_store, unprintable_is_final
from activities.models import (
    ArchiveInput,
    KycSubmissionRef,
    ReminderInput,
    SendMandateInput,
    SendMandateOutput,
    SettledPage,
    SettledPageInput,
    SettledRequest,
    SignatureRequestRef,
    SignatureRequestState,
    VerificationRef,
    VerificationState,
)
from clients.yousign import YouSignClient, retry_after_seconds
from clients.yousign_errors import YouSignFinalError, YouSignRetryableError
from clients.yousign_models import NewSignatureRequest, NewSigner, SignatureRequest, signature_request_name
from domain.calendar import mandate_expires_at, paris_day
from domain.pacing import MAX_CALLS_PER_ACTIVITY
from domain.signer_names import check_signer_name
from domain.status import MandateStatus
from domain.yousign_outcomes import YOUSIGN_DOCUMENT_TYPES
from store import dossiers, kyc, mandates
from store.database import DATABASE_FAILURES
from store.mandate_content import ensure_still_current
from store.records import Dossier, Mandate
from workflows.policies import REMINDER_NOT_RECORDED, REMINDER_UNCONFIRMED, YOUSIGN_FINAL_ERROR

log = structlog.get_logger(__name__)


# Once YouSign has e-mailed a reminder, its record is retried here (a retried activity would e-mail again).
RECORD_RETRY_PAUSES = (0.5, 1.0, 2.0)
# A reminder attempt's heartbeat, which its retry reads: whether it was cut off inside YouSign's call.
CALLING_YOUSIGN, NOT_CALLED = "calling YouSign", "YouSign did not act"
RECORD_TIMEOUT_SECONDS = 2.5  # each try: with a slow YouSign answer (15 s), all stay inside the 30 s


# YouSign's reasons (a 400's invalid parameters, say) are short; a page of them would not be kept.
MAX_FAILURE_MESSAGE = 1000


@contextmanager
def yousign_errors() -> Iterator[None]:
    """Final errors stop retrying and keep YouSign's reason; a 429 waits as long as YouSign asks.

    Raised without their cause: Temporal keeps an activity's last failure only up to a few KiB, and
    the chain behind a timeout (httpx's, httpcore's, each with its stack) went past it, leaving the
    UI nothing but "Failure exceeds size limit." The message says what failed (call, status, reason).
    """
    try:
        yield
    except YouSignFinalError as error:
        reason = error.describe()[:MAX_FAILURE_MESSAGE]
        raise ApplicationError(reason, type=YOUSIGN_FINAL_ERROR, non_retryable=True) from None
    except YouSignRetryableError as error:
        # A 429 that says nothing of when: the retry policy's own growing interval.
        wait = retry_after_seconds(error) if error.status == 429 else None
        delay = timedelta(seconds=wait) if wait is not None else None
        raise ApplicationError(
            str(error)[:MAX_FAILURE_MESSAGE], type="YouSignRetryableError", next_retry_delay=delay
        ) from None


def _check_signer_names(dossier: Dossier) -> None:
    """A name stored before the API held client representatives to YouSign's rule fails the send."""
    rep = dossier.legal_representative
    for part, name in (("first", rep.first_name), ("last", rep.last_name)) if rep else ():
        try:
            check_signer_name(name)
        except ValueError as refused:
            raise ApplicationError(
                f"the client representative's {part} name {refused}: correct the dossier, then"
                " generate a new mandate",
                type="IncompleteData",
                non_retryable=True,
            ) from None


class YouSignActivities:
    def __init__(self, db: asyncpg.Pool, yousign: YouSignClient) -> None:
        self._db = db
        self._yousign = yousign

    @contextmanager
    def _calls(self) -> Iterator[None]:
        """YouSign calls of one activity attempt: errors mapped, at most MAX_CALLS_PER_ACTIVITY."""
        with yousign_errors(), self._yousign.call_budget(MAX_CALLS_PER_ACTIVITY):
            yield

    @activity.defn
    async def send_mandate_for_signature(self, request: SendMandateInput) -> SendMandateOutput:
        """Create, fill and activate the mandate's signature request, then record it `pending`.

        Does only the missing steps: the request's `external_id` is our mandate id, so a retry (even
        after a worker died between creating the request and storing its id) finds the request
        instead of creating another. A bulk send renders the document here, in the same attempt.
        """
        # One instant for YouSign's expiration date and ours: taken apart, a send across midnight at a
        # month's end (28 Feb 23:59, then 1 Mar) would have YouSign close the request days before us.
        # The attempt's start on the Temporal service's clock, which the workflow's timers run on
        # (with the time-skipping test server, the skipped time, not the machine's).
        sent_at = activity.info().started_time
        mandate = await mandates.get_mandate(self._db, request.mandate_id)
        dossier, _ = await dossiers.get_dossier(self._db, mandate.firm_id, mandate.dossier_id)
        with self._calls():
            found = None
            if mandate.signature_request_id:
                found = await self._yousign.get_signature_request(mandate.signature_request_id)
            elif activity.info().attempt > 1:  # an earlier attempt may have created it unrecorded
                found = await self._yousign.find_signature_request(str(mandate.id))
            if found is not None and found.status != "draft":
                # Activated by an earlier attempt: the client has it, so it is recorded as it is,
                # whatever changed since (a bulk mandate is not rendered, nor refused, again).
                sr = found
                await self._claim(mandate, sr)
                # Its expiry counts from then, not from this late retry.
                if sr.activated_at is not None:
                    sent_at = min(sent_at, sr.activated_at)
            else:
                pdf, signer = await self._document_and_signer(request, mandate, dossier)
                new = NewSignatureRequest(
                    name=signature_request_name(dossier.name),
                    external_id=str(mandate.id),
                    # The day after ours: YouSign must never close the request before our timer does.
                    expiration_date=paris_day(mandate_expires_at(sent_at, request.validity))
                    + timedelta(days=1),
                )
                sr = found or await self._yousign.ensure_signature_request(new, look_up_first=False)
                await self._claim(mandate, sr)
                if sr.expiration_date and paris_day(sr.expiration_date) < new.expiration_date:
                    # Created by an attempt days ago (a long outage, a retry behind a big batch): YouSign
                    # must not close it before our timer, which counts from the activation.
                    sr = await self._yousign.update_expiration_date(sr.id, new.expiration_date)
                sr = await self._complete_and_activate(mandate.id, sr, pdf, signer)
        if sr.status not in ("ongoing", "approval", "done", "declined"):
            raise ApplicationError(
                f"signature request {sr.id} is {sr.status} at YouSign",
                type=YOUSIGN_FINAL_ERROR,
                non_retryable=True,
            )
        expires_at = mandate_expires_at(sent_at, request.validity)
        if sr.expiration_date is not None:
            # Never after YouSign closes the request (at the end of the day whichever attempt created
            # it set).
            expires_at = min(expires_at, sr.expiration_date)
        # A repeated attempt finds the mandate already pending and keeps the times recorded then.
        recorded = await mandates.transition(
            self._db,
            mandate.id,
            MandateStatus.PENDING,
            cause="sent for signature",
            at=sent_at,
            signer_id=sr.signers[0].id,
            sent_at=sent_at,
            expires_at=expires_at,
        )
        return SendMandateOutput(
            signature_request_id=sr.id,
            signer_id=recorded.signer_id,
            sent_at=recorded.sent_at,
            expires_at=recorded.expires_at,
        )

    async def _document_and_signer(
        self, request: SendMandateInput, mandate: Mandate, dossier: Dossier
    ) -> tuple[bytes, NewSigner]:
        """The PDF to sign and who signs it where: a bulk send renders it now, a firm's single send
        takes the draft it previewed (refused if it no longer says what the dossier says)."""
        _check_signer_names(dossier)  # before anything is rendered or sent
        if request.signature_field is None:
            pdf, generated = await render_and_store(self._db, mandate, dossier)
            field = generated.signature_field
        else:
            if mandate.signature_request_id is None:  # nothing at YouSign yet: still time to refuse
                with unprintable_is_final():
                    await ensure_still_current(self._db, mandate, dossier)
            pdf = await mandates.get_document(self._db, mandate.id, "generated")
            field = request.signature_field
        rep = dossier.legal_representative
        if rep is None or pdf is None:
            raise ApplicationError(
                "mandate has no document or signer", type="IncompleteData", non_retryable=True
            )
        signer = NewSigner(
            first_name=rep.first_name,
            last_name=rep.last_name,
            email=str(rep.email),
            field=field,
            date_mention=date_mention_under(field),
        )
        return pdf, signer

    async def _claim(self, mandate: Mandate, sr: SignatureRequest) -> None:
        if mandate.signature_request_id != sr.id and not await mandates.claim_signature_request(
            self._db, mandate.id, sr.id
        ):
            # Another attempt of this send (one that timed out, still running) recorded its own
            # request meanwhile, or the mandate is no longer being sent (failed, deleted): this one
            # stays an unactivated draft at YouSign, never e-mailed. Retried, the send goes on with
            # the recorded one (a stale attempt's retry is moot).
            raise ApplicationError(
                f"signature request {sr.id} lost to another attempt's, or the mandate is no longer being sent"
            )

    async def _complete_and_activate(
        self, mandate_id: UUID, sr: SignatureRequest, pdf: bytes, signer: NewSigner
    ) -> SignatureRequest:
        if sr.status != "draft":
            return sr
        document_id = next((d.id for d in sr.documents if d.nature == "signable_document"), None)
        if document_id is None:
            document_id = (await self._yousign.upload_document(sr.id, "mandat.pdf", pdf)).id
        if not sr.signers:
            await self._yousign.add_signer(sr.id, document_id, signer)
        if not await mandates.still_being_sent(self._db, mandate_id, sr.id):
            # Failed meanwhile (this attempt outlived its time; a later one gave up): the withdrawal
            # saw a draft and left it, so activating now would e-mail a mandate the firm reads as failed.
            raise ApplicationError(
                "the mandate is no longer being sent: its request is left unactivated",
                type="Conflict",
                non_retryable=True,
            )
        return await self._yousign.activate(sr.id)

    @activity.defn
    async def list_settled_signature_requests(self, page: SettledPageInput) -> SettledPage:
        """Requests signed or declined since a day, a few pages per attempt; only ours (external id)."""
        settled: list[SettledRequest] = []
        cursor = page.cursor
        with self._calls():
            for _ in range(MAX_CALLS_PER_ACTIVITY):
                found, cursor = await self._yousign.list_settled_signature_requests(
                    page.status, page.since, cursor
                )
                settled += [
                    SettledRequest(signature_request_id=sr.id, status=page.status, at=sr.completed_at)
                    for sr in found
                    if sr.external_id
                ]
                if cursor is None:
                    break
        return SettledPage(requests=settled, next_cursor=cursor)

    @activity.defn
    async def cancel_signature_request(self, ref: SignatureRequestRef) -> SignatureRequestState:
        """Cancel at expiry a request still open; one YouSign settled first is left as it is and
        reported (a signature in the last minute wins over the timer)."""
        return await self._cancel_if_open(ref.signature_request_id, "Mandat expiré")

    @activity.defn
    async def withdraw_signature_request(self, ref: SignatureRequestRef) -> SignatureRequestState:
        """Cancel the request of a mandate whose send failed, if YouSign offers it to the client
        (activated before the failure): a failed mandate is never signed, the firm starts over. A
        draft there was never e-mailed (and is never activated now): left as it is."""
        return await self._cancel_if_open(ref.signature_request_id, "Envoi du mandat interrompu")

    async def _cancel_if_open(self, signature_request_id: str, note: str) -> SignatureRequestState:
        with self._calls():
            sr = await self._yousign.get_signature_request(signature_request_id)
            if sr.status in ("ongoing", "approval"):
                try:
                    sr = await self._yousign.cancel(sr.id, "contractualization_aborted", note)
                except YouSignFinalError:
                    # Settled between our read and the cancel (the client signed just then): say how.
                    sr = await self._yousign.get_signature_request(sr.id)
                    if sr.status in ("ongoing", "approval"):
                        raise
        return _state_of(sr)

    @activity.defn
    async def get_signature_request_state(self, ref: SignatureRequestRef) -> SignatureRequestState:
        """The request as YouSign has it now (one GET): e.g. a decline's reason, which lists omit."""
        with self._calls():
            return _state_of(await self._yousign.get_signature_request(ref.signature_request_id))

    @activity.defn
    async def send_signature_reminder(self, reminder: ReminderInput) -> None:
        """YouSign e-mails the client, then the reminder is recorded. A client is never e-mailed
        twice: only a call YouSign certainly did not act on is retried; once it may have e-mailed,
        the outcome is final (`REMINDER_UNCONFIRMED`, `REMINDER_NOT_RECORDED`) and the day is spent."""
        if activity.info().attempt > 1 and reminder.sent_at in await mandates.reminders(
            self._db, reminder.mandate_id
        ):
            return
        details = activity.info().heartbeat_details
        if details and details[-1] == CALLING_YOUSIGN:  # an earlier attempt was cut off in its call
            with contextlib.suppress(ApplicationError):
                await self._record_reminder(reminder)
            raise ApplicationError(
                "an earlier attempt called YouSign and was cut off before its answer; the reminder may"
                " have reached the client",
                type=REMINDER_UNCONFIRMED,
                non_retryable=True,
            )
        activity.heartbeat(CALLING_YOUSIGN)  # what a retry after a timeout reads above
        with self._calls():
            try:
                await self._yousign.send_reminder(reminder.signature_request_id, reminder.signer_id)
            except YouSignRetryableError as error:
                if not error.maybe_done:
                    activity.heartbeat(NOT_CALLED)  # certainly not acted on (a 429...): a retry calls
                    raise
                with contextlib.suppress(ApplicationError):  # unrecorded: still unconfirmed, and spent
                    await self._record_reminder(reminder)
                raise ApplicationError(
                    f"YouSign did not confirm the reminder ({error}); it may have reached the client",
                    type=REMINDER_UNCONFIRMED,
                    non_retryable=True,
                ) from None
        await self._record_reminder(reminder)

    async def _record_reminder(self, reminder: ReminderInput) -> None:
        """Within the attempt, whatever the database does: a retried attempt would e-mail again."""
        for pause in (*RECORD_RETRY_PAUSES, None):
            try:
                async with asyncio.timeout(RECORD_TIMEOUT_SECONDS):
                    await mandates.record_reminder(self._db, reminder.mandate_id, reminder.sent_at)
                return
            except (TimeoutError, *DATABASE_FAILURES) as error:
                if pause is None:
                    raise ApplicationError(
                        f"the reminder was sent but not recorded: {error}",
                        type=REMINDER_NOT_RECORDED,
                        non_retryable=True,
                    ) from None
                log.warning(
                    "reminder sent, its record failed: trying again", mandate_id=str(reminder.mandate_id)
                )
                await asyncio.sleep(pause)

    @activity.defn
    async def archive_signed_mandate(self, archive: ArchiveInput) -> None:
        """Keep the signed PDF and YouSign's audit trail as proof of the client's consent."""
        with self._calls():
            signed = await self._yousign.download_signed_documents(archive.signature_request_id)
            # Kept at once: an audit trail that fails (not a PDF) still leaves the signed mandate here.
            await mandates.save_document(self._db, archive.mandate_id, "signed", signed)
            audit_trail = await self._yousign.download_audit_trail(archive.signature_request_id)
        await mandates.save_document(self._db, archive.mandate_id, "audit_trail", audit_trail)

    @activity.defn
    async def submit_identity_document(self, ref: KycSubmissionRef) -> VerificationRef:
        submission = await kyc.get_submission(self._db, ref.submission_id)
        if submission is None:
            raise ApplicationError("no such KYC submission", type="IncompleteData", non_retryable=True)
        if submission.verification_id:  # a retry after the upload succeeded
            return VerificationRef(verification_id=submission.verification_id)
        files = {
            f.side: (f"{f.side}.{f.content_type.split('/')[-1]}", f.content, f.content_type)
            for f in await kyc.load_files(self._db, ref.submission_id)
        }
        if "front" not in files and (again := await kyc.get_submission(self._db, ref.submission_id)):
            if again.verification_id:  # an overlapping attempt uploaded it meanwhile (and let the files go)
                return VerificationRef(verification_id=again.verification_id)
        if submission.status != "pending" or "front" not in files:  # superseded, or closed meanwhile
            raise ApplicationError(
                f"the submission is {submission.status}, its files are gone",
                type="IncompleteData",
                non_retryable=True,
            )
        with self._calls():
            verification = await self._yousign.create_identity_verification(
                first_name=submission.first_name,
                last_name=submission.birth_name or submission.last_name,
                document_type=YOUSIGN_DOCUMENT_TYPES[submission.document_type],
                file=files["front"],
                additional_file=files.get("back"),
            )
        kept = await kyc.set_verification_id(self._db, ref.submission_id, verification.id)
        return VerificationRef(verification_id=kept)

    @activity.defn
    async def get_identity_verification(self, ref: VerificationRef) -> VerificationState:
        with self._calls():
            verification = await self._yousign.get_identity_verification(ref.verification_id)
        return VerificationState(
            verification_id=verification.id,
            status=verification.status,
            status_codes=verification.status_codes,
        )


def _state_of(sr: SignatureRequest) -> SignatureRequestState:
    decline = sr.decline_information
    return SignatureRequestState(
        status=sr.status,
        signed_at=sr.completed_at,
        decline_reason=decline.reason if decline else None,
        declined_at=decline.declined_at if decline else None,
    )
