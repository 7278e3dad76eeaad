"""Mandate and dossier statuses, and the rule deriving a dossier's status from its data."""

from enum import StrEnum
from uuid import UUID


class MandateStatus(StrEnum):
    """A mandate's state. `draft`: generated, to preview and send. `sending`: on its way to YouSign
    (a bulk send's may wait its turn under YouSign's limits). `pending`: sent, awaiting the client's
    signature until `expires_at`. `signed`. `refused`: the client declined. `expired`: not signed in
    time. `failed`: it could not be generated or sent, or YouSign cancelled it after sending
    (`failure_reason` says why). `deleted`: removed (listed only in the dossier's mandate history). A
    refused, expired or failed mandate is deleted to generate a new one."""

    DRAFT = "draft"
    SENDING = "sending"
    PENDING = "pending"
    SIGNED = "signed"
    REFUSED = "refused"
    EXPIRED = "expired"
    FAILED = "failed"
    DELETED = "deleted"


# What a dossier's current mandate can be: a deleted one is in its history only.
CurrentMandateStatus = StrEnum(
    "CurrentMandateStatus", {s.name: s.value for s in MandateStatus if s != MandateStatus.DELETED}
)
CurrentMandateStatus.__doc__ = MandateStatus.__doc__.split(" `deleted`:")[0] + (
    " (A deleted mandate is no dossier's current one: it is in the dossier's mandate history.)"
)

FINAL_MANDATE_STATUSES = frozenset(
    {MandateStatus.SIGNED, MandateStatus.REFUSED, MandateStatus.EXPIRED, MandateStatus.FAILED}
)
DELETABLE_MANDATE_STATUSES = frozenset(
    {MandateStatus.DRAFT, MandateStatus.EXPIRED, MandateStatus.REFUSED, MandateStatus.FAILED}
)
# While the client may still sign (or has signed), the dossier's data is frozen.
LOCKING_MANDATE_STATUSES = frozenset({MandateStatus.SENDING, MandateStatus.PENDING, MandateStatus.SIGNED})


class DossierStatus(StrEnum):
    """Where a client company stands. `missing_information`: its SIRET or legal representative is
    absent. `ready_for_mandate`: both are there and nothing is sent: no mandate yet, a draft to send, or
    a failed one (see its `mandate`). `mandate_pending`: one is sent
    (or being sent) and awaits signature. `ready_for_designation`: signed; the firm may designate the
    Plateforme Agréée. `mandate_refused`, `mandate_expired`: delete the mandate, then generate a new one."""

    MISSING_INFORMATION = "missing_information"
    READY_FOR_MANDATE = "ready_for_mandate"
    MANDATE_PENDING = "mandate_pending"
    READY_FOR_DESIGNATION = "ready_for_designation"
    MANDATE_REFUSED = "mandate_refused"
    MANDATE_EXPIRED = "mandate_expired"

    @property
    def label(self) -> str:
        return DOSSIER_STATUS_LABELS[self]


DOSSIER_STATUS_LABELS: dict[DossierStatus, str] = {
    DossierStatus.MISSING_INFORMATION: "Informations manquantes",
    DossierStatus.READY_FOR_MANDATE: "Prêt pour mandat",
    DossierStatus.MANDATE_PENDING: "Mandat en attente",
    DossierStatus.READY_FOR_DESIGNATION: "Prêt pour désignation",
    DossierStatus.MANDATE_REFUSED: "Mandat refusé",
    DossierStatus.MANDATE_EXPIRED: "Mandat expiré",
}

_FROM_MANDATE = {
    MandateStatus.SENDING: DossierStatus.MANDATE_PENDING,
    MandateStatus.PENDING: DossierStatus.MANDATE_PENDING,
    MandateStatus.SIGNED: DossierStatus.READY_FOR_DESIGNATION,
    MandateStatus.REFUSED: DossierStatus.MANDATE_REFUSED,
    MandateStatus.EXPIRED: DossierStatus.MANDATE_EXPIRED,
}


def why_no_mandate(
    status: DossierStatus,
    *,
    has_siret: bool,
    has_legal_representative: bool,
    bulk_send_id: UUID | None = None,
) -> str:
    """Why a dossier that is not `ready_for_mandate` cannot have one generated, and what to do (for
    a mandate a bulk send is sending, which one: the firm follows it there)."""
    if status == DossierStatus.MISSING_INFORMATION:
        missing = [
            name
            for name, present in (("siret", has_siret), ("legal_representative", has_legal_representative))
            if not present
        ]
        return f"the dossier is missing_information: set its {' and '.join(missing) or 'data'} first"
    if status in (DossierStatus.MANDATE_REFUSED, DossierStatus.MANDATE_EXPIRED):
        return f"the dossier is {status}: delete its mandate first, then generate a new one"
    if status == DossierStatus.MANDATE_PENDING:
        by = f", by bulk send {bulk_send_id}" if bulk_send_id else ""
        return (
            f"the dossier is mandate_pending: its mandate is sent (or being sent{by}) for the client to sign"
        )
    return f"the dossier is {status}: its mandate is signed"


def dossier_status(
    *, has_siret: bool, has_legal_representative: bool, mandate_status: MandateStatus | None
) -> DossierStatus:
    """A sent or signed mandate decides the status; otherwise missing data comes first.

    A draft, failed or deleted mandate means nothing reached the client yet, so the dossier is
    as ready as its data makes it.
    """
    if mandate_status in LOCKING_MANDATE_STATUSES:
        return _FROM_MANDATE[mandate_status]
    if not (has_siret and has_legal_representative):
        return DossierStatus.MISSING_INFORMATION
    return _FROM_MANDATE.get(mandate_status, DossierStatus.READY_FOR_MANDATE)


def why_not_another(current: MandateStatus, *, at_yousign: bool) -> str:
    """Why a dossier with a mandate (not deleted) cannot have another generated, and what to do."""
    if current == MandateStatus.FAILED and at_yousign:
        # One that failed before YouSign had it is replaced when a new one is asked for; not this one.
        return (
            "the dossier's mandate failed once YouSign had its request (its failure_reason says why):"
            " delete it, then generate a new one"
        )
    return f"the dossier already has a {current} mandate: delete it before generating a new one"


ARCHIVED = "the dossier is archived (a client who left): restore it first"


def why_not_archivable(mandate_status: MandateStatus | None) -> str | None:
    """Why a dossier cannot be archived yet, or None. Only a dossier whose mandate is settled for
    good (none, or signed) leaves the list: anything else still waits for the firm or the client."""
    if mandate_status in (None, MandateStatus.SIGNED, MandateStatus.DELETED):
        return None
    if mandate_status in (MandateStatus.SENDING, MandateStatus.PENDING):
        return (
            "its mandate awaits the client's signature: archive the dossier once the mandate is signed,"
            " or refused or expired and then deleted"
        )
    return f"its mandate is {mandate_status}: delete the mandate first"
