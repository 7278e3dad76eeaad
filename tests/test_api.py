"""The HTTP API over real HTTP (uvicorn), with the dev server, PostgreSQL and the emulator behind it."""

from __future__ import annotations

import asyncio
import base64
import io
import json
import re
from datetime import UTC, date, datetime
from uuid import UUID, uuid4

import httpx
import pytest
from PIL import Image
from pypdf import PdfReader
from temporalio.client import WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError

from clients.yousign_webhooks import sign_body
from domain.errors import Conflict
from domain.models import LegalRepresentative
from domain.status import MandateStatus
from starter import mandate_actions
from store import dossiers, firms, kyc, mandates, webhooks
from store.firms import create_firm
from store.records import KycFile
from tests.api_support import api_stack, firm_client, serving_api
from tests.conftest import WEBHOOK_SECRET
from tests.helpers import (
    CLIENT_REP,
    answer_lost,
    establishment_siret,
    eventually,
    test_settings,
    verified_firm_with_dossier,
)
from workflows.kyc import KycWorkflowInput, kyc_workflow_id

REP = CLIENT_REP.model_dump(mode="json")


async def preview_text(client: httpx.AsyncClient, dossier_id) -> str:
    """The text of the dossier's mandate PDF, once generated."""

    async def preview():
        answer = await client.get(f"/v1/dossiers/{dossier_id}/mandate/document")
        return answer.content if answer.status_code == 200 else None

    pdf = PdfReader(io.BytesIO(await eventually(preview)))
    return " ".join(page.extract_text() for page in pdf.pages)


def jpeg(width: int = 640, height: int = 400) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), "white").save(buffer, format="JPEG")
    return buffer.getvalue()


async def status_of(client: httpx.AsyncClient, dossier_id: str) -> str:
    return (await client.get(f"/v1/dossiers/{dossier_id}")).json()["einvoicing_status"]


async def reaches(client, dossier_id: str, status: str, within: float = 20) -> None:
    async def check():
        return await status_of(client, dossier_id) == status

    await eventually(check, within=within)


async def mandate_reaches(client, dossier_id, status: str) -> dict:
    async def check():
        mandate = (await client.get(f"/v1/dossiers/{dossier_id}/mandate")).json()
        return mandate if mandate.get("status") == status else None

    return await eventually(check, within=20)


def signer_of(emulator, dossier_id_mandate_id: str):
    sr = next(s for s in emulator.state.signature_requests.values() if s.external_id == dossier_id_mandate_id)
    return emulator.state.sr_signers(sr)[0]


async def browser_action(emulator, signer_id: str, action: str, **form) -> None:
    """What the client's browser does on YouSign's page: a plain form post."""
    async with httpx.AsyncClient(base_url=emulator.public_url) as browser:
        assert (await browser.get(f"/sign/{signer_id}")).status_code == 200
        answer = await browser.post(f"/sign/{signer_id}/{action}", data=form)
        assert answer.status_code in (200, 303)


async def test_full_story_from_firm_verification_to_signed(client, emulator, smtp_sink):
    firm = (await client.get("/v1/firm")).json()
    assert firm["legal_representative"]["verification"]["status"] == "not_submitted"
    assert (
        await client.put("/v1/firm/platform", json={"name": "PA Exemple", "siren": "552081317"})
    ).status_code == 200
    submitted = await client.put(
        "/v1/firm/legal-representative",
        data={
            "first_name": "Paul",
            "last_name": "Expert",
            "email": "paul@cabinet.example",
            "document_type": "identity_card",
        },
        files={"front": ("recto.jpg", jpeg(), "image/jpeg"), "back": ("verso.jpg", jpeg(), "image/jpeg")},
    )
    assert submitted.status_code == 202
    assert submitted.json()["legal_representative"]["verification"]["status"] == "pending"

    async def verified():
        return (await client.get("/v1/firm")).json()["legal_representative"]["verification"][
            "status"
        ] == "verified"

    await eventually(verified, within=20)  # the emulator's webhook reaches the KYC workflow through the API

    created = await client.post("/v1/dossiers", json={"name": "ACME SAS", "siret": "732 829 320 00074"})
    assert created.status_code == 201
    dossier = created.json()
    assert created.headers["location"] == f"/v1/dossiers/{dossier['id']}"
    assert (dossier["siret"], dossier["siren"], dossier["einvoicing_status"]) == (
        "73282932000074",
        "732829320",
        "missing_information",
    )
    assert dossier["einvoicing_status_label"] == "Informations manquantes"
    patched = await client.patch(f"/v1/dossiers/{dossier['id']}", json={"legal_representative": REP})
    assert patched.json()["einvoicing_status"] == "ready_for_mandate"

    generated = await client.post(f"/v1/dossiers/{dossier['id']}/mandate")
    assert generated.status_code == 201 and generated.json()["status"] == "draft"
    assert generated.headers["location"] == f"/v1/dossiers/{dossier['id']}/mandate"
    mandate = generated.json()
    assert mandate["number"].startswith("732829320_552081317_")

    # Asked for at once (as the README's session does): the answer waits for the PDF.
    draft_pdf = await client.get(f"/v1/dossiers/{dossier['id']}/mandate/document")
    assert draft_pdf.status_code == 200, draft_pdf.text
    assert draft_pdf.headers["content-type"] == "application/pdf" and draft_pdf.content.startswith(b"%PDF")

    sent = await client.post(f"/v1/dossiers/{dossier['id']}/mandate/send")
    assert sent.status_code == 202, sent.text
    assert sent.json()["status"] in ("sending", "pending")
    await mandate_reaches(client, dossier["id"], "pending")
    assert (await client.post(f"/v1/dossiers/{dossier['id']}/mandate/send")).status_code == 409
    pending_delete = await client.delete(f"/v1/dossiers/{dossier['id']}/mandate")
    assert pending_delete.status_code == 409 and "pending" in pending_delete.json()["detail"]

    reminded = await client.post(f"/v1/dossiers/{dossier['id']}/mandate/reminders")
    assert reminded.status_code == 202
    capped = await client.post(f"/v1/dossiers/{dossier['id']}/mandate/reminders")
    assert capped.status_code == 429 and int(capped.headers["Retry-After"]) > 0
    assert capped.json()["next_reminder_allowed_at"] == reminded.json()["next_reminder_allowed_at"]
    view = (await client.get(f"/v1/dossiers/{dossier['id']}/mandate")).json()
    assert (
        len(view["reminders"]) == 1
        and view["next_reminder_allowed_at"] == reminded.json()["next_reminder_allowed_at"]
    )
    assert (await client.patch(f"/v1/dossiers/{dossier['id']}", json={"name": "X"})).status_code == 409
    # Saved again unchanged (a form re-submitted): accepted, and nothing is written.
    before = (await client.get(f"/v1/dossiers/{dossier['id']}")).json()
    unchanged = {k: before[k] for k in ("name", "siret", "legal_representative")}
    resaved = await client.patch(f"/v1/dossiers/{dossier['id']}", json=unchanged)
    assert resaved.status_code == 200 and resaved.json()["updated_at"] == before["updated_at"]
    # The firm's own reference is not printed: it changes all the same, alone; with a printed
    # field, the whole change is refused and nothing is written.
    both = await client.patch(f"/v1/dossiers/{dossier['id']}", json={"external_ref": "X-1", "name": "X"})
    assert both.status_code == 409
    assert (await client.get(f"/v1/dossiers/{dossier['id']}")).json()["external_ref"] == before[
        "external_ref"
    ]
    referenced = await client.patch(f"/v1/dossiers/{dossier['id']}", json={"external_ref": "CLI-101b"})
    assert referenced.status_code == 200 and referenced.json()["external_ref"] == "CLI-101b"
    assert referenced.json()["updated_at"] > before["updated_at"]
    blank = await client.patch(f"/v1/dossiers/{dossier['id']}", json={"external_ref": "  "})
    assert blank.json()["external_ref"] is None  # blank is none, not an empty reference

    await browser_action(emulator, signer_of(emulator, mandate["id"]).id, "sign")
    await reaches(client, dossier["id"], "ready_for_designation")
    listed = (await client.get("/v1/dossiers", params={"status": "ready_for_designation"})).json()
    assert [d["id"] for d in listed["items"]] == [dossier["id"]]
    assert listed["items"][0]["mandate"]["status"] == "signed"
    signed = (await client.get(f"/v1/dossiers/{dossier['id']}/mandate")).json()
    assert len(signed["reminders"]) == 1 and signed["next_reminder_allowed_at"] is None  # none to come

    async def signed_pdf():
        answer = await client.get(f"/v1/dossiers/{dossier['id']}/mandate/document")
        return answer if "signe" in answer.headers["content-disposition"] else None

    assert (await eventually(signed_pdf)).content != draft_pdf.content

    async def confirmation():
        # The session's mailbox is shared: this mandate's confirmation, by its number.
        return [
            m for m in smtp_sink.to(REP["email"]) if mandate["number"] in m.get_body(("plain",)).get_content()
        ]

    [mail] = await eventually(confirmation)
    assert next(mail.iter_attachments()).get_content() == (await eventually(signed_pdf)).content

    # Signed, confirmed, its run over (or about to be): nothing more to do with it, and the answer says so.
    async def refused_for_good():
        answer = await client.delete(f"/v1/dossiers/{dossier['id']}/mandate")
        assert answer.status_code == 409
        return answer.json()["detail"] if "workflow is over" in answer.json()["detail"] else None

    assert "can no longer be sent, reminded or deleted" in await eventually(refused_for_good)
    assert (await client.patch(f"/v1/dossiers/{dossier['id']}", json={"name": "Y"})).status_code == 409


async def test_a_reminder_yousign_refuses_is_a_409_saying_why_and_leaves_the_day(client, db, firm, emulator):
    dossier = await verified_firm_with_dossier(db, firm)
    assert (await client.post(f"/v1/dossiers/{dossier.id}/mandate")).status_code == 201
    assert (await client.post(f"/v1/dossiers/{dossier.id}/mandate/send")).status_code == 202
    await mandate_reaches(client, dossier.id, "pending")
    # YouSign refuses it (its signer not `notified` yet, say): retrying at once would not help.
    emulator.state.add_fault(method="POST", path_regex=r"/send_reminder$", kind="400", times=1)
    refused = await client.post(f"/v1/dossiers/{dossier.id}/mandate/reminders")
    assert refused.status_code == 409 and "the reminder could not be sent" in refused.json()["detail"]
    assert "400" in refused.json()["detail"]
    # Nothing was e-mailed: the day's reminder is still there.
    assert (await client.post(f"/v1/dossiers/{dossier.id}/mandate/reminders")).status_code == 202


async def test_a_reminder_yousign_may_have_sent_is_a_503_until_the_next_paris_day(
    client, db, firm, emulator, monkeypatch
):
    dossier = await verified_firm_with_dossier(db, firm)
    assert (await client.post(f"/v1/dossiers/{dossier.id}/mandate")).status_code == 201
    assert (await client.post(f"/v1/dossiers/{dossier.id}/mandate/send")).status_code == 202
    await mandate_reaches(client, dossier.id, "pending")
    assert (await client.post(f"/v1/dossiers/{dossier.id}/mandate/reminders")).status_code == 202
    capped = await client.post(f"/v1/dossiers/{dossier.id}/mandate/reminders")
    assert capped.status_code == 429
    # The workflow's answer when YouSign answered too late (tests/test_mandate_workflow.py makes it
    # happen; here it would take the activity's 30 s timeout): the day is spent, so "retry in 5 s"
    # would only earn a 429. The answer says when, as the 429 does.
    allowed_at = capped.json()["next_reminder_allowed_at"]
    unconfirmed = ApplicationError(
        "YouSign did not answer in time; the reminder may have reached the client; the next reminder"
        " is allowed from 2026-12-06 00:00 Paris time",
        allowed_at,
        type="ReminderUnconfirmed",
    )

    class TimedOutReminder:
        async def start_update(self, *args, **kwargs):
            return self

        async def result(self):
            raise WorkflowUpdateFailedError(unconfirmed)

    monkeypatch.setattr(mandate_actions, "mandate_handle", lambda *args: TimedOutReminder())
    answer = await client.post(f"/v1/dossiers/{dossier.id}/mandate/reminders")
    assert answer.status_code == 503 and answer.json()["detail"] == unconfirmed.message
    assert answer.json()["next_reminder_allowed_at"] == allowed_at
    waits = [int(reply.headers["Retry-After"]) for reply in (answer, capped)]
    assert abs(waits[0] - waits[1]) <= 2  # until the Paris midnight, not the 5 s of a Temporal blip


async def test_an_expiry_says_what_else_happened_if_anything(client, db, firm):
    dossier = await verified_firm_with_dossier(db, firm)
    mandate = (await client.post(f"/v1/dossiers/{dossier.id}/mandate")).json()
    await mandate_reaches(client, dossier.id, "draft")
    # What the workflow records when the client signed at YouSign after the validity ended
    # (tests/test_mandate_fault_branches.py makes it happen).
    late = "the client signed at YouSign on 2027-01-05 11:00 Paris time, after the mandate's validity ended"
    now = datetime.now(UTC)
    for status in (MandateStatus.SENDING, MandateStatus.PENDING):
        await mandates.transition(db, UUID(mandate["id"]), status, cause="test", at=now)
    await mandates.transition(
        db,
        UUID(mandate["id"]),
        MandateStatus.EXPIRED,
        cause="late",
        at=now,
        detail={"reason": late},
        expired_at=now,
    )
    expired = (await client.get(f"/v1/dossiers/{dossier.id}/mandate")).json()
    assert expired["status"] == "expired" and expired["expiry_reason"] == late
    assert expired["refusal_reason"] is None
    history = (await client.get(f"/v1/dossiers/{dossier.id}/mandates")).json()["items"]
    assert history[0]["expiry_reason"] == late


async def test_refused_then_deleted_and_regenerated(client, db, firm, emulator):
    dossier = await verified_firm_with_dossier(db, firm)
    mandate = (await client.post(f"/v1/dossiers/{dossier.id}/mandate")).json()
    assert (await client.post(f"/v1/dossiers/{dossier.id}/mandate/send")).status_code == 202
    await mandate_reaches(client, dossier.id, "pending")
    await browser_action(emulator, signer_of(emulator, mandate["id"]).id, "decline", reason="Pas maintenant")
    await reaches(client, str(dossier.id), "mandate_refused")
    refused = (await client.get(f"/v1/dossiers/{dossier.id}/mandate")).json()
    assert refused["status"] == "refused" and refused["refused_at"]
    assert refused["refusal_reason"] == "Pas maintenant"  # the client's own words, for the firm
    assert refused["expiry_reason"] is None
    assert (await client.post(f"/v1/dossiers/{dossier.id}/mandate")).status_code == 409  # delete first
    assert (await client.delete(f"/v1/dossiers/{dossier.id}/mandate")).status_code == 204
    assert (await client.get(f"/v1/dossiers/{dossier.id}/mandate")).status_code == 404
    assert await status_of(client, str(dossier.id)) == "ready_for_mandate"
    again = await client.post(f"/v1/dossiers/{dossier.id}/mandate")
    assert again.status_code == 201 and again.json()["number"] != mandate["number"]
    # The refusal stays readable in the dossier's history, newest first, after its delete.
    history = (await client.get(f"/v1/dossiers/{dossier.id}/mandates")).json()["items"]
    assert [(m["id"], m["status"]) for m in history] == [
        (again.json()["id"], "draft"),
        (mandate["id"], "deleted"),
    ]
    assert history[1]["refused_at"] and history[1]["refusal_reason"] == "Pas maintenant"
    assert history[1]["deleted_at"] and history[0]["deleted_at"] is None
    first = (await client.get(f"/v1/dossiers/{dossier.id}/mandates", params={"limit": 1})).json()
    rest = (
        await client.get(f"/v1/dossiers/{dossier.id}/mandates", params={"cursor": first["next_cursor"]})
    ).json()
    assert [m["id"] for m in first["items"] + rest["items"]] == [m["id"] for m in history]
    assert rest["next_cursor"] is None
    other = await firms.create_firm(db, name="Autre cabinet", siren="552081317")
    async with (await firm_client(db, client.base_url, other)).http as stranger:
        assert (await stranger.get(f"/v1/dossiers/{dossier.id}/mandates")).status_code == 404


async def test_a_dossier_without_mandates_is_deleted_one_that_had_one_is_kept(client, db, firm):
    mistaken = (await client.post("/v1/dossiers", json={"name": "Doublon"})).json()
    other = await firms.create_firm(db, name="Autre cabinet", siren="552081317")
    async with (await firm_client(db, client.base_url, other)).http as stranger:
        assert (await stranger.delete(f"/v1/dossiers/{mistaken['id']}")).status_code == 404
    assert (await client.delete(f"/v1/dossiers/{mistaken['id']}")).status_code == 204
    assert (await client.get(f"/v1/dossiers/{mistaken['id']}")).status_code == 404
    assert (await client.delete(f"/v1/dossiers/{mistaken['id']}")).status_code == 404
    # A mandate was generated (and deleted, never sent): the dossier stays, with that history.
    dossier = await verified_firm_with_dossier(db, firm)
    assert (await client.post(f"/v1/dossiers/{dossier.id}/mandate")).status_code == 201
    await mandate_reaches(client, dossier.id, "draft")
    assert (await client.delete(f"/v1/dossiers/{dossier.id}/mandate")).status_code == 204
    kept = await client.delete(f"/v1/dossiers/{dossier.id}")
    assert kept.status_code == 409 and "kept with its mandates' history" in kept.json()["detail"]
    assert (await client.get(f"/v1/dossiers/{dossier.id}")).status_code == 200


async def test_a_client_who_left_is_archived_off_the_list_and_restored(client, db, firm):
    dossier = await verified_firm_with_dossier(db, firm)
    path = f"/v1/dossiers/{dossier.id}"
    stay = (await client.post("/v1/dossiers", json={"name": "Reste"})).json()
    assert (await client.post(f"{path}/mandate")).status_code == 201
    await mandate_reaches(client, dossier.id, "draft")
    drafted = await client.get("/v1/dossiers", params={"mandate_status": "draft"})
    assert [d["id"] for d in drafted.json()["items"]] == [str(dossier.id)]
    never = await client.get("/v1/dossiers", params={"mandate_status": "deleted"})
    assert never.status_code == 422 and never.json()["errors"][0]["field"] == "mandate_status.0"
    refused = await client.post(f"{path}/archive")  # its draft would wait for ever
    assert refused.status_code == 409 and "delete the mandate first" in refused.json()["detail"]
    assert (await client.delete(f"{path}/mandate")).status_code == 204
    counted = sum((await client.get("/v1/dossiers/status-counts")).json().values())

    archived = await client.post(f"{path}/archive")
    assert archived.status_code == 200 and archived.json()["archived_at"], archived.text
    assert (await client.post(f"{path}/archive")).json()["archived_at"] == archived.json()["archived_at"]
    listed = [d["id"] for d in (await client.get("/v1/dossiers")).json()["items"]]
    assert listed == [stay["id"]]
    gone = (await client.get("/v1/dossiers", params={"archived": "true"})).json()["items"]
    assert [d["id"] for d in gone] == [str(dossier.id)]
    assert sum((await client.get("/v1/dossiers/status-counts")).json().values()) == counted - 1
    # Kept as it was, with its history, but frozen: no change, no mandate, its SIRET still its own.
    assert (await client.get(path)).json()["archived_at"] == archived.json()["archived_at"]
    assert len((await client.get(f"{path}/mandates")).json()["items"]) == 1
    patched = await client.patch(path, json={"name": "Nouveau nom"})
    assert patched.status_code == 409 and "archived" in patched.json()["detail"]
    generated = await client.post(f"{path}/mandate")
    assert generated.status_code == 409 and "archived" in generated.json()["detail"]
    twin = await client.post("/v1/dossiers", json={"name": "Retour", "siret": dossier.siret})
    assert twin.status_code == 409 and "archived: restore it" in twin.json()["detail"]
    other = await firms.create_firm(db, name="Autre cabinet", siren="552081317")
    async with (await firm_client(db, client.base_url, other)).http as stranger:
        for action in ("archive", "restore"):
            assert (await stranger.post(f"{path}/{action}")).status_code == 404

    restored = await client.post(f"{path}/restore")
    assert restored.status_code == 200 and restored.json()["archived_at"] is None
    assert restored.json()["einvoicing_status"] == "ready_for_mandate"
    assert len((await client.get("/v1/dossiers")).json()["items"]) == 2
    assert (await client.post(f"{path}/mandate")).status_code == 201
    assert (await client.post(f"/v1/dossiers/{uuid4()}/restore")).status_code == 404


async def test_a_draft_is_deleted_and_the_dossier_is_ready_again(client, db, firm):
    dossier = await verified_firm_with_dossier(db, firm)
    assert (await client.post(f"/v1/dossiers/{dossier.id}/mandate")).status_code == 201
    await mandate_reaches(client, dossier.id, "draft")
    assert (await client.delete(f"/v1/dossiers/{dossier.id}/mandate")).status_code == 204
    assert (await client.get(f"/v1/dossiers/{dossier.id}/mandate")).status_code == 404
    assert await status_of(client, str(dossier.id)) == "ready_for_mandate"


async def test_a_draft_whose_run_never_started_can_be_deleted(client, db, firm):
    # The gateway stopped between reserving the draft and starting its workflow: nothing was sent.
    dossier = await verified_firm_with_dossier(db, firm)
    orphan = await mandates.reserve_mandate(db, firm.id, dossier.id, issued_on=date(2027, 2, 1))
    assert (await client.post(f"/v1/dossiers/{dossier.id}/mandate/send")).status_code == 409
    # A moment after its reservation it may just be starting (another request): not set aside yet.
    young = await client.delete(f"/v1/dossiers/{dossier.id}/mandate")
    assert young.status_code == 409 and "being started" in young.json()["detail"]
    await db.execute(
        "UPDATE mandates SET created_at = created_at - interval '2 minutes' WHERE id = $1", orphan.id
    )
    assert (await client.delete(f"/v1/dossiers/{dossier.id}/mandate")).status_code == 204
    assert (await mandates.get_mandate(db, orphan.id)).status == "deleted"
    assert await status_of(client, str(dossier.id)) == "ready_for_mandate"

    # Editing what such a draft prints sets it aside the same way, instead of a 409 for ever.
    again = await mandates.reserve_mandate(db, firm.id, dossier.id, issued_on=date(2027, 2, 2))
    await db.execute(
        "UPDATE mandates SET created_at = created_at - interval '2 minutes' WHERE id = $1", again.id
    )
    assert (await client.patch(f"/v1/dossiers/{dossier.id}", json={"name": "Renommée"})).status_code == 200
    assert (await mandates.get_mandate(db, again.id)).status == "deleted"


async def test_editing_what_a_draft_prints_discards_the_draft(client, db, firm, emulator):
    dossier = await verified_firm_with_dossier(db, firm)
    draft = (await client.post(f"/v1/dossiers/{dossier.id}/mandate")).json()
    same = await client.patch(
        f"/v1/dossiers/{dossier.id}",
        json={"name": dossier.name, "previous_platform": None, "external_ref": "CLI-7"},
    )
    assert same.status_code == 200 and same.json()["mandate"]["id"] == draft["id"]  # nothing printed changed
    assert same.json()["external_ref"] == "CLI-7"

    new_rep = {"first_name": "Paul", "last_name": "Nouveau", "email": "paul@client.example"}
    edited = await client.patch(f"/v1/dossiers/{dossier.id}", json={"legal_representative": new_rep})
    assert edited.status_code == 200 and edited.json()["mandate"] is None
    assert edited.json()["einvoicing_status"] == "ready_for_mandate"
    assert (await mandates.get_mandate(db, UUID(draft["id"]))).status == "deleted"
    # The new draft names the new representative, and that is who YouSign asks to sign.
    again = (await client.post(f"/v1/dossiers/{dossier.id}/mandate")).json()
    await mandate_reaches(client, dossier.id, "draft")
    assert (await client.post(f"/v1/dossiers/{dossier.id}/mandate/send")).status_code == 202
    await mandate_reaches(client, dossier.id, "pending")
    assert signer_of(emulator, again["id"]).info["last_name"] == "Nouveau"


async def test_a_draft_the_firm_has_changed_since_is_not_sent(client, db, firm, emulator):
    dossier = await verified_firm_with_dossier(db, firm)
    draft = (await client.post(f"/v1/dossiers/{dossier.id}/mandate")).json()
    await mandate_reaches(client, dossier.id, "draft")
    await eventually(lambda: mandates.get_document(db, UUID(draft["id"]), "generated"))
    # The firm now designates another platform: the draft names the old one (and its number too).
    assert (
        await client.put("/v1/firm/platform", json={"name": "Autre PA", "matricule": "0815"})
    ).status_code == 200
    # Refused at once (a 409, not a 202 and a failure a moment later), and it stays a draft.
    sent = await client.post(f"/v1/dossiers/{dossier.id}/mandate/send")
    assert sent.status_code == 409 and "delete it and generate a new one" in sent.json()["detail"]
    assert (await client.get(f"/v1/dossiers/{dossier.id}/mandate")).json()["status"] == "draft"
    assert not [s for s in emulator.state.signature_requests.values() if s.external_id == draft["id"]]
    assert (await client.delete(f"/v1/dossiers/{dossier.id}/mandate")).status_code == 204
    again = (await client.post(f"/v1/dossiers/{dossier.id}/mandate")).json()
    assert "_0815_" in again["number"]


async def test_a_draft_naming_what_the_firm_replaced_is_refused_at_once(client, db, firm, emulator):
    dossier = await verified_firm_with_dossier(db, firm)
    draft = (await client.post(f"/v1/dossiers/{dossier.id}/mandate")).json()
    await eventually(lambda: mandates.get_document(db, UUID(draft["id"]), "generated"))
    send = f"/v1/dossiers/{dossier.id}/mandate/send"
    # The firm submits a new representative: while YouSign checks them, nothing goes out (as
    # nothing is generated), though the draft names the one verified before.
    newcomer = LegalRepresentative(first_name="Nouveau", last_name="Gérant", email="nouveau@cabinet.fr")
    files = [KycFile(side="front", content_type="image/png", content=b"x")]
    newer = await kyc.create_submission(db, firm.id, newcomer, "passport", files)
    checking = await client.post(send)
    assert checking.status_code == 409
    assert checking.json()["detail"] == (
        "the firm's legal representative is not verified (pending): wait until GET /v1/firm says"
        " verified (YouSign answers within minutes)"
    )
    # Verified, the newcomer is not the one the draft names: refused now, not failed a moment later.
    await kyc.complete_submission(
        db, newer.id, status="verified", reason=None, status_codes=[], completed_at=newer.created_at
    )
    outdated = await client.post(send)
    assert outdated.status_code == 409
    assert outdated.json()["detail"].startswith("the draft no longer says what the dossier and the firm say")
    # So is a draft printed before the platform was renamed (same SIREN, same number).
    assert (await client.delete(f"/v1/dossiers/{dossier.id}/mandate")).status_code == 204
    draft = (await client.post(f"/v1/dossiers/{dossier.id}/mandate")).json()
    await eventually(lambda: mandates.get_document(db, UUID(draft["id"]), "generated"))
    platform = (await client.get("/v1/firm")).json()["platform"]
    renamed = await client.put("/v1/firm/platform", json={**platform, "name": "PA Renommée"})
    assert renamed.status_code == 200
    assert (await client.post(send)).status_code == 409
    assert (await client.get(f"/v1/dossiers/{dossier.id}/mandate")).json()["status"] == "draft"
    assert not [s for s in emulator.state.signature_requests.values() if s.external_id in (draft["id"],)]


async def test_the_previous_platform_fills_block_5_of_the_mandate(client, db, firm):
    dossier = await verified_firm_with_dossier(db, firm)
    previous = {"name": "Ancienne Plateforme SA", "matricule": "0815"}
    patched = await client.patch(f"/v1/dossiers/{dossier.id}", json={"previous_platform": previous})
    assert patched.json()["previous_platform"] == {**previous, "siren": None}
    unnamed = await client.patch(f"/v1/dossiers/{dossier.id}", json={"previous_platform": {"name": "X"}})
    assert (unnamed.status_code, [e["field"] for e in unnamed.json()["errors"]]) == (
        422,
        ["previous_platform.matricule"],
    )

    assert (await client.post(f"/v1/dossiers/{dossier.id}/mandate")).status_code == 201
    same = await client.patch(f"/v1/dossiers/{dossier.id}", json={"previous_platform": previous})
    assert same.json()["mandate"] is not None  # the same platform again: the draft stays
    text = await preview_text(client, dossier.id)
    assert "Ancienne Plateforme SA" in text and "0815" in text
    assert "Aucune" not in text  # what block 5 says when there was none


async def test_expiry_with_a_short_validity(dev_env, db, firm, emulator, yousign, smtp_sink):
    async with api_stack(dev_env, db, emulator, yousign, smtp_sink, mandate_validity="PT3S") as base_url:
        firm_api = await firm_client(db, base_url, firm)
        async with firm_api.http as client:
            dossier = await verified_firm_with_dossier(db, firm)
            mandate = (await client.post(f"/v1/dossiers/{dossier.id}/mandate")).json()
            await client.post(f"/v1/dossiers/{dossier.id}/mandate/send")
            # (Pending lasts 3 s only: not waited for, on a busy machine it may be over before a look.)
            await reaches(client, str(dossier.id), "mandate_expired", within=30)
            expired = (await client.get(f"/v1/dossiers/{dossier.id}/mandate")).json()
            assert expired["status"] == "expired"
            log = await mandates.events(db, UUID(mandate["id"]))
            assert [e.to_status for e in log] == ["draft", "sending", "pending", "expired"]
            sr = next(s for s in emulator.state.signature_requests.values() if s.external_id == mandate["id"])
            assert sr.status == "canceled"
            assert (await client.post(f"/v1/dossiers/{dossier.id}/mandate/reminders")).status_code == 409
            assert (await client.delete(f"/v1/dossiers/{dossier.id}/mandate")).status_code == 204
            assert (await client.post(f"/v1/dossiers/{dossier.id}/mandate")).status_code == 201


async def test_forged_webhook_is_401_and_replayed_one_has_no_effect(api, client, db, firm, emulator):
    body = b'{"event_id":"x","event_name":"signer.done","event_time":"1","data":{}}'
    async with httpx.AsyncClient(base_url=api) as yousign_side:
        forged = await yousign_side.post(
            "/v1/webhooks/yousign", content=body, headers={"X-Yousign-Signature-256": "sha256=00"}
        )
        assert forged.status_code == 401 and forged.headers["content-type"] == "application/problem+json"
        assert (await yousign_side.post("/v1/webhooks/yousign", content=body)).status_code == 401

        dossier = await verified_firm_with_dossier(db, firm)
        mandate = (await client.post(f"/v1/dossiers/{dossier.id}/mandate")).json()
        await client.post(f"/v1/dossiers/{dossier.id}/mandate/send")
        await mandate_reaches(client, dossier.id, "pending")
        signer = signer_of(emulator, mandate["id"])
        emulator.state.decline_signer(signer.id, "non")
        await reaches(client, str(dossier.id), "mandate_refused")
        declined = next(
            e
            for e in emulator.state.webhook_events
            if e.event_name == "signer.declined" and mandate["id"].encode() in e.body
        )
        headers = {"X-Yousign-Signature-256": sign_body(WEBHOOK_SECRET, declined.body)}
        log_before = await mandates.events(db, UUID(mandate["id"]))
        replay = await yousign_side.post("/v1/webhooks/yousign", content=declined.body, headers=headers)
        assert replay.status_code == 200 and replay.json() == {"status": "duplicate"}
        assert await mandates.events(db, UUID(mandate["id"])) == log_before  # nothing happened again
        unknown = (
            b'{"event_id":"%s","event_name":"signer.done","event_time":"1","data":{"signature_request":{"id":"nope"}}}'
            % uuid4().hex.encode()
        )
        ack = await yousign_side.post(
            "/v1/webhooks/yousign",
            content=unknown,
            headers={"X-Yousign-Signature-256": sign_body(WEBHOOK_SECRET, unknown)},
        )
        assert ack.json() == {"status": "ignored"}
        # Signed, about our request, but of another shape than YouSign's: a 400, and the id not
        # recorded, so that a corrected redelivery is processed rather than taken for a duplicate.
        odd_id = uuid4().hex
        odd = json.dumps(
            {
                "event_id": odd_id,
                "event_name": "signer.declined",
                "event_time": "99999999999999999999",
                "data": {
                    "signature_request": {
                        "id": signer.signature_request_id,
                        "decline_information": {"reason": 5},
                    }
                },
            }
        ).encode()
        answer = await yousign_side.post(
            "/v1/webhooks/yousign",
            content=odd,
            headers={"X-Yousign-Signature-256": sign_body(WEBHOOK_SECRET, odd)},
        )
        assert answer.status_code == 400 and "not what YouSign sends" in answer.json()["detail"]
        assert not await webhooks.seen_webhook_event(db, odd_id)
    events = (await client.get(f"/v1/dossiers/{dossier.id}/mandate")).json()
    assert events["status"] == "refused"


@pytest.mark.parametrize(
    ("event_id", "data", "answer"),
    [
        ("e\u0000", {}, 400),
        ("e" * 201, {}, 400),
        ("fine", {"signature_request": {"id": "sr\u0000"}}, 200),
        ("fine-too", {"identity_document": {"id": "id\u0000"}}, 200),
    ],
)
async def test_a_signed_webhook_the_database_cannot_store_is_refused_or_ignored(api, event_id, data, answer):
    name = "verification.identity_document.done" if "identity_document" in data else "signer.done"
    body = json.dumps({"event_id": event_id, "event_name": name, "event_time": "1", "data": data}).encode()
    headers = {"X-Yousign-Signature-256": sign_body(WEBHOOK_SECRET, body)}
    async with httpx.AsyncClient(base_url=api) as yousign_side:
        delivered = await yousign_side.post("/v1/webhooks/yousign", content=body, headers=headers)
    assert delivered.status_code == answer, delivered.text
    if answer == 200:
        assert delivered.json() == {"status": "ignored"}


def test_texts_yousign_gives_reach_the_workflows_as_the_database_can_keep_them():
    from activities.yousign import _state_of
    from clients.yousign_models import SignatureRequest
    from clients.yousign_webhooks import WebhookEvent
    from starter.webhook_events import kyc_signal, mandate_signal

    def event(data):
        return WebhookEvent(event_id="e", event_name="signer.declined", event_time="1", data=data)

    # A NUL failed the refusal's record on every try (the mandate stuck `pending` in the store), and
    # a megabyte of reason was served back with the mandate.
    declined = {"signature_request": {"id": "sr", "decline_information": {"reason": "bad\u0000reason"}}}
    assert mandate_signal(event(declined)).decline_reason == "badreason"
    declined["signature_request"]["decline_information"]["reason"] = "é" * 500_000
    assert len(mandate_signal(event(declined)).decline_reason) == 1_000
    checked = {
        "identity_document": {"id": "v", "status": "failed", "status_codes": ["IDDV\u0000_1", "C" * 99]}
    }
    assert kyc_signal(event(checked)).status_codes == ["IDDV_1", "C" * 50]
    # The same texts read from YouSign's API (the sweep's and the expiry's look-ups).
    sr = SignatureRequest(
        id="sr", status="declined", name="m", decline_information={"reason": "non\u0000merci"}
    )
    assert _state_of(sr).decline_reason == "nonmerci"


async def test_a_webhook_the_database_kept_from_its_workflow_is_processed_when_redelivered(api, monkeypatch):
    lookup, outages = mandates.mandate_for_signature_request, []

    async def database_blip(*args):
        if not outages:
            outages.append(1)
            raise ConnectionResetError("connection lost")
        return await lookup(*args)

    monkeypatch.setattr(mandates, "mandate_for_signature_request", database_blip)
    body = (
        b'{"event_id":"%s","event_name":"signer.done","event_time":"1","data":{"signature_request":{"id":"sr-x"}}}'
        % uuid4().hex.encode()
    )
    headers = {"X-Yousign-Signature-256": sign_body(WEBHOOK_SECRET, body)}
    async with httpx.AsyncClient(base_url=api) as yousign_side:
        first = await yousign_side.post("/v1/webhooks/yousign", content=body, headers=headers)
        assert first.status_code == 503  # YouSign retries
        again = await yousign_side.post("/v1/webhooks/yousign", content=body, headers=headers)
        assert again.json() == {"status": "ignored"}  # processed (not ours), not taken for a duplicate
        third = await yousign_side.post("/v1/webhooks/yousign", content=body, headers=headers)
        assert third.json() == {"status": "duplicate"}

        async def database_down(*args):
            raise ConnectionResetError("connection lost")

        monkeypatch.setattr(webhooks, "seen_webhook_event", database_down)  # the very first query
        down = await yousign_side.post("/v1/webhooks/yousign", content=body, headers=headers)
        assert down.status_code == 503  # not a 500


async def test_another_firm_gets_404_on_every_route(api, client, db, firm):
    dossier = await verified_firm_with_dossier(db, firm)
    assert (await client.post(f"/v1/dossiers/{dossier.id}/mandate")).status_code == 201
    other = await firm_client(db, api, await create_firm(db, name="Autre cabinet", siren="552081317"))
    async with other.http as intruder:
        base = f"/v1/dossiers/{dossier.id}"
        for method, path in [
            ("GET", base),
            ("PATCH", base),
            ("GET", f"{base}/mandate"),
            ("POST", f"{base}/mandate"),
            ("GET", f"{base}/mandate/document"),
            ("POST", f"{base}/mandate/send"),
            ("POST", f"{base}/mandate/reminders"),
            ("DELETE", f"{base}/mandate"),
        ]:
            answer = await intruder.request(
                method, path, json={"name": "pris"} if method == "PATCH" else None
            )
            assert answer.status_code == 404, (method, path, answer.text)
        assert (await intruder.get("/v1/dossiers")).json()["items"] == []
    assert (await client.get(base)).json()["name"] == "ACME SAS"


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer wrong"}, {"Authorization": "Basic abc"}])
async def test_missing_or_wrong_key_is_401(api, headers):
    async with httpx.AsyncClient(base_url=api) as anonymous:
        answer = await anonymous.get("/v1/dossiers", headers=headers)
    assert answer.status_code == 401 and answer.json()["status"] == 401


UNREADABLE_BODIES = [
    pytest.param(b'{"name": "X",}', "application/json", id="not JSON"),
    pytest.param('{"name": "Société"}'.encode("latin-1"), "application/json", id="not UTF-8"),
    pytest.param(b"--x\r\nbroken", "multipart/form-data; boundary=x", id="broken form"),
    pytest.param(b'{"first_name": "X"}', "text/plain", id="JSON as text"),
    pytest.param(b'{"first_name": "X"}', "application/json", id="JSON to a form"),
    pytest.param(b"x", "multipart/form-data", id="form without boundary"),
]


@pytest.mark.parametrize(("body", "content_type"), UNREADABLE_BODIES)
@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer wrong"}])
async def test_no_key_is_401_before_the_body_is_judged(api, headers, body, content_type):
    """FastAPI refuses a body it cannot read before any dependency runs: the key is checked first
    all the same, so a caller without one learns nothing of how its body is read."""
    async with httpx.AsyncClient(base_url=api) as anonymous:
        for method, path in (("POST", "/v1/dossiers"), ("PUT", "/v1/firm/legal-representative")):
            answer = await anonymous.request(
                method, path, content=body, headers={**headers, "content-type": content_type}
            )
            assert (answer.status_code, answer.headers.get("www-authenticate")) == (401, "Bearer"), (
                path,
                answer.text,
            )


BAD_DOSSIERS = [
    ({"name": "A", "siret": "7328293200007A"}, "siret", "only digits"),
    ({"name": "A", "siret": "7328293200007"}, "siret", "14 digits"),
    ({"name": "A", "siret": "12345678912345"}, "siret", "checksum"),
    ({"name": "", "siret": "73282932000074"}, "name", "must not be empty"),
    ({"siret": "73282932000074"}, "name", "required"),
    (
        {"name": "A", "legal_representative": {**REP, "email": "jeanne@localhost"}},
        "legal_representative.email",
        "email",
    ),
    (
        {"name": "A", "legal_representative": {**REP, "first_name": " "}},
        "legal_representative.first_name",
        "empty",
    ),
    ({"name": "A", "unknown": 1}, "unknown", "not permitted"),
    # The mandate's PDF prints Latin with every accent, Greek and Cyrillic: no CJK (Nguyễn is fine).
    ({"name": "山田 Import"}, "name", "cannot print: '山田'"),
    (
        {"name": "A", "legal_representative": {**REP, "last_name": "Nguyễn 山"}},
        "legal_representative.last_name",
        "cannot print: '山'",
    ),
    # The client's representative signs at YouSign, which refuses more than the PDF does.
    (
        {"name": "A", "legal_representative": {**REP, "last_name": "Nguyễn"}},
        "legal_representative.last_name",
        "YouSign refuses in a signer's name: 'ễ'; it could be written 'Nguyen'",
    ),
    (
        {"name": "A", "legal_representative": {**REP, "position": " "}},
        "legal_representative.position",
        "must not be empty",
    ),
    (
        {"name": "A", "legal_representative": {**REP, "position": "P" * 61}},
        "legal_representative.position",
        "at most 60 characters",
    ),
    ({"name": "A\x00B"}, "name", "pattern"),  # PostgreSQL cannot store NUL: refused, not a 500
    ({"name": "A", "external_ref": "x\x1by"}, "external_ref", "pattern"),
]


async def test_the_representatives_position_is_kept_and_printed_as_their_capacity(client, db, firm):
    dossier = await verified_firm_with_dossier(db, firm)
    draft = (await client.post(f"/v1/dossiers/{dossier.id}/mandate")).json()
    rep = {**REP, "position": "Gérante"}
    patched = await client.patch(f"/v1/dossiers/{dossier.id}", json={"legal_representative": rep})
    assert patched.status_code == 200 and patched.json()["legal_representative"]["position"] == "Gérante"
    # The draft printed no position: it is discarded, as for any change to what the mandate prints.
    assert patched.json()["mandate"] is None
    assert (await mandates.get_mandate(db, UUID(draft["id"]))).status == "deleted"
    assert (await client.post(f"/v1/dossiers/{dossier.id}/mandate")).status_code == 201
    text = await preview_text(client, dossier.id)
    assert "Qualité : Représentant légal (Gérante)" in text


async def test_names_in_any_latin_script_are_taken_and_printed(client, db, firm):
    dossier = await verified_firm_with_dossier(db, firm)
    # Names YouSign takes for a signer (Ş, ă, Ł); the birth name, printed only, may be any.
    rep = {**REP, "first_name": "Łukasz", "last_name": "Ştefănescu", "birth_name": "Nguyễn"}
    patched = await client.patch(f"/v1/dossiers/{dossier.id}", json={"legal_representative": rep})
    assert patched.status_code == 200 and patched.json()["legal_representative"]["birth_name"] == "Nguyễn"
    assert (await client.post(f"/v1/dossiers/{dossier.id}/mandate")).status_code == 201
    text = await preview_text(client, dossier.id)
    assert "Łukasz Ştefănescu" in text and "Nguyễn" in text


@pytest.mark.parametrize(("body", "field", "reason"), BAD_DOSSIERS)
async def test_bad_dossier_input_names_the_field(client, body, field, reason):
    answer = await client.post("/v1/dossiers", json=body)
    assert answer.status_code == 422 and answer.headers["content-type"] == "application/problem+json"
    errors = {e["field"]: e["message"] for e in answer.json()["errors"]}
    assert reason in errors[field], errors


@pytest.mark.parametrize(
    ("body", "reason"),
    [({"name": "N" * 201}, "at most 200 characters"), ({"name": ""}, "must not be empty")],
)
async def test_a_patch_refuses_as_a_creation_does(client, db, firm, body, reason):
    dossier = await verified_firm_with_dossier(db, firm)
    answer = await client.patch(f"/v1/dossiers/{dossier.id}", json=body)
    assert answer.status_code == 422 and reason in answer.json()["errors"][0]["message"]


async def test_a_second_dossier_with_a_siret_already_there_is_refused(client, db, firm):
    first = (await client.post("/v1/dossiers", json={"name": "ACME SAS", "siret": "73282932000074"})).json()
    again = await client.post("/v1/dossiers", json={"name": "ACME bis", "siret": "732 829 320 00074"})
    assert again.status_code == 409
    assert again.json()["detail"].startswith("siret:") and first["id"] in again.json()["detail"]
    other = await verified_firm_with_dossier(db, firm, siret="55208131766522")  # named "ACME SAS"
    draft = (await client.post(f"/v1/dossiers/{other.id}/mandate")).json()
    moved = await client.patch(f"/v1/dossiers/{other.id}", json={"siret": "73282932000074"})
    assert moved.status_code == 409 and first["id"] in moved.json()["detail"]
    kept = (await client.get(f"/v1/dossiers/{other.id}")).json()
    # Refused before anything changed: its SIRET, and the draft that shows it, are as they were.
    assert kept["siret"] == "55208131766522" and kept["mandate"]["id"] == draft["id"]
    assert (await client.get(f"/v1/dossiers/{other.id}/mandate")).json()["status"] == "draft"
    # Its own SIRET again is no duplicate; another firm may have the same client.
    same = await client.patch(f"/v1/dossiers/{first['id']}", json={"siret": "73282932000074", "name": "ACME"})
    assert same.status_code == 200 and same.json()["name"] == "ACME"
    elsewhere = await firms.create_firm(db, name="Autre cabinet", siren="552081317")
    await dossiers.create_dossier(
        db, elsewhere.id, name="ACME", siret="73282932000074", legal_representative=None
    )
    dossier_list = (await client.get("/v1/dossiers")).json()
    assert [d["name"] for d in dossier_list["items"]] == ["ACME", "ACME SAS"]


async def test_sending_a_draft_the_firms_change_has_failed_says_why(client, db, firm):
    dossier = await verified_firm_with_dossier(db, firm)
    await client.post(f"/v1/dossiers/{dossier.id}/mandate")
    await client.put("/v1/firm/platform", json={"name": "Autre PA", "matricule": "0042"})

    async def failed():
        mandate = (await client.get(f"/v1/dossiers/{dossier.id}/mandate")).json()
        return mandate if mandate["status"] == "failed" else None

    await eventually(failed)
    sent = await client.post(f"/v1/dossiers/{dossier.id}/mandate/send")
    assert sent.status_code == 409
    assert "only a draft can be sent" in sent.json()["detail"]
    assert "Plateforme Agréée changed" in sent.json()["detail"]
    # Never sent: asking for a new mandate replaces it (no delete needed first).
    first = (await client.get(f"/v1/dossiers/{dossier.id}/mandate")).json()
    again = await client.post(f"/v1/dossiers/{dossier.id}/mandate")
    assert again.status_code == 201 and again.json()["number"] != first["number"]
    assert (await mandates.get_mandate(db, UUID(first["id"]))).status == "deleted"


async def test_of_sends_at_once_one_goes_and_the_others_say_why(client, db, firm):
    dossier = await verified_firm_with_dossier(db, firm)
    await client.post(f"/v1/dossiers/{dossier.id}/mandate")
    url = f"/v1/dossiers/{dossier.id}/mandate/send"
    answers = await asyncio.gather(*(client.post(url) for _ in range(3)))
    assert sorted(a.status_code for a in answers) == [202, 409, 409]
    for refused in (a for a in answers if a.status_code == 409):
        detail = refused.json()["detail"]
        assert "already being sent" in detail or "the mandate is sending" in detail, detail


async def test_concurrent_creations_of_one_siret_make_one_dossier(db, firm):
    async def create(name: str):
        return await dossiers.create_dossier(
            db, firm.id, name=name, siret="73282932000074", legal_representative=None
        )

    outcomes = await asyncio.gather(*(create(f"ACME {i}") for i in range(4)), return_exceptions=True)
    assert sum(not isinstance(o, Exception) for o in outcomes) == 1
    assert all(isinstance(o, Conflict) for o in outcomes if isinstance(o, Exception))


@pytest.mark.parametrize(
    ("path", "params", "field"),
    [
        ("/v1/dossiers", {"limit": 0}, "limit"),
        ("/v1/dossiers", {"limit": 501}, "limit"),
        ("/v1/dossiers", {"status": "nope"}, "status.0"),
        ("/v1/dossiers", {"cursor": "garbage"}, "cursor"),
        # Well formed, but its time (year 1, +05:00) has no UTC instant: a 422, not PostgreSQL's error.
        (
            "/v1/dossiers",
            {"cursor": base64.urlsafe_b64encode(f"0001-01-01T00:00:00+05:00|{uuid4()}".encode())},
            "cursor",
        ),
        ("/v1/dossiers", {"search": "a\x00b"}, "search"),
        ("/v1/dossiers/not-a-uuid", {}, "dossier_id"),
    ],
)
async def test_bad_query_and_path_values_name_the_field(client, path, params, field):
    answer = await client.get(path, params=params)
    assert answer.status_code == 422
    assert field in {e["field"] for e in answer.json()["errors"]}


async def test_a_query_parameter_meant_for_another_is_named_not_ignored(client, api):
    # Ignored, `status[]` (how PHP and some JS libraries write a list) would list every dossier.
    listed = await client.get("/v1/dossiers", params={"status[]": "mandate_pending"})
    assert listed.status_code == 422
    assert listed.json()["errors"] == [
        {"field": "status[]", "message": "write it status= (repeat status= for several values)"}
    ]
    misspelt = await client.get("/v1/dossiers", params={"stauts": "draft", "Limit": 5})
    assert misspelt.json()["errors"] == [
        {"field": "stauts", "message": "no such parameter: did you mean status?"},
        {"field": "Limit", "message": "no such parameter: did you mean limit?"},
    ]
    # What is no way of writing one of its parameters is left alone (a cache-buster, tracking).
    busted = await client.get("/v1/dossiers", params={"_": "1733450000", "utm_source": "mail"})
    assert busted.status_code == 200
    # The key is checked first, as for any other refusal.
    async with httpx.AsyncClient(base_url=api) as stranger:
        assert (await stranger.get("/v1/dossiers", params={"status[]": "x"})).status_code == 401


async def test_a_method_the_path_does_not_take_is_405_listing_those_it_takes(client):
    answer = await client.put(f"/v1/dossiers/{uuid4()}")
    assert answer.status_code == 405 and answer.json()["status"] == 405
    assert answer.headers["allow"] == "DELETE, GET, PATCH"  # every route of the path, not only the first
    # A literal path is its own resource, even where `/v1/dossiers/{dossier_id}` matches it too.
    assert (await client.put("/v1/dossiers/status-counts")).headers["allow"] == "GET"
    # Even for a method the template takes: its id would be invalid, but the path is not an id.
    answer = await client.patch("/v1/dossiers/status-counts", json={"name": "x"})
    assert (answer.status_code, answer.headers["allow"]) == (405, "GET")


JSON = {"content-type": "application/json"}


async def test_other_bad_inputs(client, db, firm):
    not_json = await client.post(
        "/v1/dossiers", content=b'{"name": "X",}', headers={"content-type": "application/json"}
    )
    # Unreadable, not invalid: a 400 saying where decoding stopped (api.md's 400).
    assert not_json.status_code == 400
    assert not_json.json()["detail"].startswith("the body is not valid JSON: ")
    assert "(at character 13)" in not_json.json()["detail"], not_json.json()
    latin1 = await client.post(
        "/v1/dossiers",
        content='{"name": "Société"}'.encode("latin-1"),
        headers={"content-type": "application/json"},
    )
    assert (latin1.status_code, latin1.json()["title"]) == (400, "Bad Request")
    assert "send JSON in UTF-8" in latin1.json()["detail"], latin1.json()
    # Valid JSON Python will not read: told why, not that it is not UTF-8.
    deep = await client.post("/v1/dossiers", content=b"[" * 50_000 + b"]" * 50_000, headers=JSON)
    assert deep.json()["detail"] == "the body could not be read: its JSON is nested too deeply"
    long_number = b'{"dossier_ids": [' + b"9" * 5_001 + b"]}"
    wide = await client.post("/v1/bulk-sends", content=long_number, headers=JSON)
    assert wide.json()["detail"] == "the body could not be read: a number in it has more than 4,300 digits"
    # A text value where the form takes a file: told to send a file.
    text_front = await client.put(
        "/v1/firm/legal-representative",
        data={**UPLOAD_FIELDS, "document_type": "passport", "front": "hello"},
        files={"back": ("b.png", _png(), "image/png")},
    )
    assert text_front.json()["errors"] == [
        {"field": "front", "message": "must be a file, not a text value (curl: -F name=@path)"}
    ]
    # JSON sent as curl -d sends it (a form), or as text: the client is told the type to send.
    for content_type in ("application/x-www-form-urlencoded", "text/plain", None):
        headers = {"content-type": content_type} if content_type else {}
        typed = await client.post("/v1/dossiers", content=b'{"name": "Client"}', headers=headers)
        assert typed.status_code == 415 and "Content-Type: application/json" in typed.json()["detail"]
    # JSON to the operation that takes a form (the identity document): told the encoding to use.
    form = await client.put("/v1/firm/legal-representative", json={"first_name": "Camille"})
    assert form.status_code == 415 and "multipart/form-data" in form.json()["detail"]
    blank = await client.post("/v1/dossiers", json={"name": "   "})
    assert blank.json()["errors"] == [
        {"field": "name", "message": "must not be empty (spaces alone do not count)"}
    ]
    array = await client.post("/v1/dossiers", json=[{"name": "Client"}])  # JSON, but not an object
    assert (array.status_code, [e["field"] for e in array.json()["errors"]]) == (422, ["body"])
    assert (
        await client.post(
            "/v1/dossiers", content=b"x" * (2 * 1024 * 1024), headers={"content-type": "application/json"}
        )
    ).status_code == 413
    assert (await client.get(f"/v1/dossiers/{uuid4()}")).status_code == 404
    platform = await client.put("/v1/firm/platform", json={"name": "PA"})
    assert platform.status_code == 422 and "siren or a matricule" in platform.text
    assert {e["field"] for e in platform.json()["errors"]} == {"matricule"}  # a field, not "body"
    bad_siren = await client.put("/v1/firm/platform", json={"name": "PA", "siren": "123456789"})
    assert {e["field"] for e in bad_siren.json()["errors"]} == {"siren"}
    rep = {"first_name": "Jeanne", "last_name": "Martin", "email": "j@example.com", "birthname": "Durand"}
    misspelt = await client.post("/v1/dossiers", json={"name": "Client", "legal_representative": rep})
    assert (misspelt.status_code, [e["field"] for e in misspelt.json()["errors"]]) == (
        422,
        ["legal_representative.birthname"],
    )
    # Arabic-Indic digits are digits to Python's regex, not to the PA number (nor to PostgreSQL).
    bad_matricule = await client.put(
        "/v1/firm/platform", json={"name": "PA", "matricule": "\u0661\u0662\u0663\u0664"}
    )
    placeholder = await client.put("/v1/firm/platform", json={"name": "PA", "matricule": "9998"})
    assert placeholder.status_code == 422 and "placeholder" in placeholder.json()["errors"][0]["message"]
    assert (bad_matricule.status_code, [e["field"] for e in bad_matricule.json()["errors"]]) == (
        422,
        ["matricule"],
    )
    missing = await client.post("/v1/dossiers", json={"name": "Incomplet"})
    generated = await client.post(f"/v1/dossiers/{missing.json()['id']}/mandate")
    assert generated.status_code == 409 and "not verified" in generated.json()["detail"]
    dossier = await verified_firm_with_dossier(db, firm)
    assert (
        (await client.post(f"/v1/dossiers/{missing.json()['id']}/mandate"))
        .json()["detail"]
        .startswith("the dossier is missing_information")
    )
    assert (await client.post(f"/v1/dossiers/{dossier.id}/mandate/send")).status_code == 404  # no mandate yet
    await db.execute("UPDATE dossiers SET siret = '12345678900007' WHERE id = $1", dossier.id)  # an old row
    no_siren = await client.post(f"/v1/dossiers/{dossier.id}/mandate")
    assert no_siren.status_code == 409 and "siren cannot number a mandate" in no_siren.json()["detail"]
    assert (await client.patch(f"/v1/dossiers/{dossier.id}", json={"name": None})).status_code == 422


UPLOAD_FIELDS = {"first_name": "Paul", "last_name": "Expert", "email": "paul@cabinet.example"}


@pytest.mark.parametrize(
    ("document_type", "files", "status", "field", "reason"),
    [
        ("passport", {"front": ("a.jpg", b"not an image", "image/jpeg")}, 422, "front", "JPEG, PNG or PDF"),
        (
            "passport",
            {"front": ("a.png", b"\x89PNG\r\n\x1a\nbroken", "image/png")},
            422,
            "front",
            "cannot be read",
        ),
        ("passport", {"front": ("a.jpg", jpeg(300, 200), "image/jpeg")}, 422, "front", "320 x 256"),
        (
            "identity_card",
            {"front": ("a.jpg", jpeg(), "image/jpeg")},
            422,
            "back",
            "back of an identity card",
        ),
        ("passport", {}, 422, "front", "required"),
        ("visa", {"front": ("a.jpg", jpeg(), "image/jpeg")}, 422, "document_type", "identity_card"),
        (
            "passport",
            {"front": ("a.pdf", b"%PDF-1.4" + b"0" * (11 * 1024 * 1024), "application/pdf")},
            413,
            "front",
            "10 MB",
        ),
        (
            "passport",
            {"front": ("a.jpg", b"\xff\xd8\xff" + b"0" * (21 * 1024 * 1024), "image/jpeg")},
            413,
            "front",
            "20 MB",
        ),
    ],
)
async def test_identity_documents_are_checked_before_anything_is_stored(
    client, db, firm, document_type, files, status, field, reason
):
    answer = await client.put(
        "/v1/firm/legal-representative", data={**UPLOAD_FIELDS, "document_type": document_type}, files=files
    )
    assert answer.status_code == status, answer.text
    assert answer.json()["title"] == ("Content too large" if status == 413 else "Invalid request")
    errors = {e["field"]: e["message"] for e in answer.json()["errors"]}
    assert reason in errors[field], errors
    assert (await client.get("/v1/firm")).json()["legal_representative"]["verification"][
        "status"
    ] == "not_submitted"


async def test_oversized_upload_is_refused_before_being_read(client):
    huge = b"\xff\xd8\xff" + b"0" * (45 * 1024 * 1024)
    answer = await client.put(
        "/v1/firm/legal-representative",
        data={**UPLOAD_FIELDS, "document_type": "passport"},
        files={"front": ("a.jpg", huge, "image/jpeg")},
    )
    assert answer.status_code == 413 and answer.json()["title"] == "Content too large"


async def test_an_upload_without_a_valid_key_is_refused_before_its_body_is_read(api):
    from starter.api.limits import BodyLimits

    read, answered = [], []

    async def receive():
        read.append(1)
        return {"type": "http.request", "body": b"x" * 1024, "more_body": True}

    async def send(message):
        answered.append(message)

    async def firm_of(request) -> UUID | None:  # only the key "good" is a firm's
        return uuid4() if request.headers.get("authorization") == "Bearer good" else None

    async def route(scope, receive, send):  # the app behind: reached only with a known key
        await receive()
        await send({"type": "http.response.start", "status": 202, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    limited = BodyLimits(route, firm_of=firm_of)
    for key, status, reads in ((b"Bearer nope", 401, 0), (b"", 401, 0), (b"Bearer good", 202, 1)):
        read.clear(), answered.clear()
        scope = {
            "type": "http",
            "method": "PUT",
            "path": "/v1/firm/legal-representative",
            "headers": [(b"authorization", key)] if key else [],
        }
        await limited(scope, receive, send)
        assert (answered[0]["status"], len(read)) == (status, reads)
    # Through the whole API: the same problem as any other route's 401.
    async with httpx.AsyncClient(base_url=api, headers={"Authorization": "Bearer nope"}) as stranger:
        answer = await stranger.put(
            "/v1/firm/legal-representative",
            data={**UPLOAD_FIELDS, "document_type": "passport"},
            files={"front": ("a.png", _png(), "image/png")},
        )
    assert answer.status_code == 401 and answer.headers["www-authenticate"] == "Bearer"
    assert answer.json()["detail"].startswith("a valid API key is required")


async def test_a_body_that_stops_coming_is_a_408_not_a_hang(monkeypatch, dev_env, db):
    from starter.api import limits

    monkeypatch.setattr(limits, "BODY_IDLE_TIMEOUT", 0.5)
    async with serving_api(test_settings(), db, dev_env.client) as base_url:
        host, port = base_url.removeprefix("http://").split(":")
        reader, writer = await asyncio.open_connection(host, int(port))
        body = b'{"name": "ACME"}'
        # It declares 100 bytes and sends 16: without a bound the request waits for the rest for ever.
        writer.write(
            b"POST /v1/dossiers HTTP/1.1\r\nHost: api\r\nContent-Type: application/json\r\n"
            b"Content-Length: 100\r\n\r\n" + body
        )
        await writer.drain()
        try:  # the server answers, then closes the connection
            answer = await asyncio.wait_for(reader.read(), timeout=10)
        finally:
            writer.close()  # else, unanswered, the server's shutdown would wait on it
    head, _, payload = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 408 "), head
    assert b"connection: close" in head.lower()
    problem = json.loads(payload)
    assert (problem["title"], problem["detail"]) == (
        "Request Timeout",
        "the request body stopped coming for 0.5 s before its end (is its Content-Length the size of"
        " what is sent?)",
    )


async def test_a_stalled_body_the_app_lets_through_is_answered_by_the_limits_themselves():
    from starter.api.limits import BodyLimits

    answered = []

    async def receive():
        await asyncio.Event().wait()  # the client sends nothing more

    async def send(message):
        answered.append(message)

    async def route(scope, receive, send):  # an app with no handler of its own for the refusal
        await receive()

    scope = {"type": "http", "method": "POST", "path": "/v1/dossiers", "headers": []}
    await BodyLimits(route, firm_of=None, idle_timeout=0.1)(scope, receive, send)
    assert answered[0]["status"] == 408 and (b"connection", b"close") in answered[0]["headers"]
    assert json.loads(answered[1]["body"])["title"] == "Request Timeout"

    # A body that trickles in, never silent for long, is bounded as a whole.
    async def trickle():
        await asyncio.sleep(0.05)
        return {"type": "http.request", "body": b"x", "more_body": True}

    async def reads_it_all(scope, receive, send):
        while (await receive()).get("more_body"):
            pass

    answered.clear()
    await BodyLimits(reads_it_all, firm_of=None, idle_timeout=0.1, deadline=0.3)(scope, trickle, send)
    assert answered[0]["status"] == 408
    assert json.loads(answered[1]["body"])["detail"] == "the request body took over 0.3 s to come"


async def test_driving_licence_is_accepted_without_a_back(client, emulator):
    uploads_before = _identity_uploads(emulator)
    answer = await client.put(
        "/v1/firm/legal-representative",
        data={**UPLOAD_FIELDS, "document_type": "driving_licence"},
        files={"front": ("permis.png", _png(), "image/png")},
    )
    assert answer.status_code == 202

    async def uploaded():
        return _identity_uploads(emulator)[len(uploads_before) :]

    (upload,) = await eventually(uploaded)
    assert b'name="type"' not in upload.body and b'name="additional_file"' not in upload.body


def _identity_uploads(emulator) -> list:
    return [
        r for r in emulator.state.recorded_requests if r.path.endswith("/verifications/identity_documents")
    ]


def _png() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (800, 500), "white").save(buffer, format="PNG")
    return buffer.getvalue()


async def test_health_and_readiness(api):
    async with httpx.AsyncClient(base_url=api) as ops:
        assert (await ops.get("/healthz")).json() == {"status": "ok"}
        ready = await ops.get("/readyz")
        assert ready.status_code == 200 and ready.json()["checks"] == {"database": "ok", "temporal": "ok"}
        assert (await ops.get("/openapi.json")).json()["info"]["title"] == "E-invoicing mandates"
        # The docs page works offline: Swagger UI comes from the API itself, not from a CDN.
        page = (await ops.get("/docs")).text
        scripts = re.findall(r'(?:src|href)="([^"]+)"', page)
        assert scripts and all(url.startswith("/") for url in scripts), scripts
        for url in scripts:
            assert (await ops.get(url)).status_code == 200, url


async def test_readiness_says_which_dependency_is_down():
    import asyncpg
    from temporalio.client import Client

    nothing_listens = "127.0.0.1:1"
    db = await asyncpg.create_pool(f"postgresql://mandates@{nothing_listens}/mandates", min_size=0)
    temporal = await Client.connect(nothing_listens, lazy=True)
    try:
        async with serving_api(test_settings(), db, temporal) as api, httpx.AsyncClient(base_url=api) as ops:
            assert (await ops.get("/healthz")).status_code == 200  # the process itself is alive
            ready = await ops.get("/readyz")
            # A firm's request meanwhile: told to retry, not an internal error.
            listed = await ops.get("/v1/dossiers", headers={"Authorization": "Bearer mk_any"})
            # Even one whose body cannot be read (its key is checked first, and cannot be).
            unreadable = await ops.post(
                "/v1/dossiers",
                content=b"{",
                headers={"content-type": "application/json", "Authorization": "Bearer mk_any"},
            )
    finally:
        await db.close()
    assert (ready.status_code, ready.json()["status"]) == (503, "not ready")
    checks = ready.json()["checks"]
    assert checks["database"].startswith("unavailable") and checks["temporal"].startswith("unavailable")
    assert (listed.status_code, listed.headers["retry-after"]) == (503, "5")
    assert listed.json()["detail"].startswith("the database did not answer (ConnectionRefusedError)")
    assert (unreadable.status_code, unreadable.headers.get("retry-after")) == (503, "5"), unreadable.text


async def test_the_dossier_list_pages_with_its_cursor(client, db, firm):
    from store import dossiers

    made = {
        str(
            (
                await dossiers.create_dossier(
                    db, firm.id, name=f"C{i}", siret=None, legal_representative=None
                )
            ).id
        )
        for i in range(53)
    }
    first = (await client.get("/v1/dossiers")).json()
    assert len(first["items"]) == 50 and first["next_cursor"]  # the default page
    seen, cursor = [], None
    while True:
        page = (
            await client.get("/v1/dossiers", params={"limit": 20, **({"cursor": cursor} if cursor else {})})
        ).json()
        seen += [d["id"] for d in page["items"]]
        if not (cursor := page["next_cursor"]):
            break
    assert len(seen) == len(set(seen)) == 53 and set(seen) == made
    assert (await client.get("/v1/dossiers", params={"limit": 500})).status_code == 200
    too_many = await client.get("/v1/dossiers", params={"limit": 501})
    assert too_many.status_code == 422 and [e["field"] for e in too_many.json()["errors"]] == ["limit"]

    # A cursor only positions a firm in its own list: another firm using it sees none of these.
    other = await create_firm(db, name="Autre cabinet", siren="552081317", address="Lyon")
    other_api = await firm_client(db, str(client.base_url).rstrip("/"), other)
    async with other_api.http as intruder:
        answer = await intruder.get("/v1/dossiers", params={"cursor": first["next_cursor"]})
    # (A cursor is a position, not a firm's: it is read as one, over the other firm's own dossiers.)
    assert answer.status_code == 200 and not made & {d["id"] for d in answer.json()["items"]}


async def test_empty_query_values_read_as_absent(client, db, firm):
    await verified_firm_with_dossier(db, firm)
    blank = await client.get("/v1/dossiers?status=&search=&limit=&cursor=")
    assert blank.status_code == 200
    assert blank.json() == (await client.get("/v1/dossiers")).json()
    only_status = await client.get("/v1/dossiers?status=&status=ready_for_mandate&limit=")
    assert [d["einvoicing_status"] for d in only_status.json()["items"]] == ["ready_for_mandate"]


async def test_status_counts_and_search(client, db, firm):
    await verified_firm_with_dossier(db, firm)
    await client.post("/v1/dossiers", json={"name": "Boulangerie Dupont"})
    counts = (await client.get("/v1/dossiers/status-counts")).json()
    assert (
        counts["ready_for_mandate"] == 1
        and counts["missing_information"] == 1
        and counts["mandate_pending"] == 0
    )
    found = (await client.get("/v1/dossiers", params={"search": "boulang"})).json()["items"]
    assert [d["name"] for d in found] == ["Boulangerie Dupont"]
    both = await client.get(
        "/v1/dossiers", params=[("status", "ready_for_mandate"), ("status", "missing_information")]
    )
    assert len(both.json()["items"]) == 2


async def test_metrics_count_mandates_and_webhooks(api, client, db, firm, monkeypatch):
    from starter.api.routes import metrics

    def drafts(scraped: str) -> float:
        return float(re.search(r'^mandates\{status="draft"\} (\S+)$', scraped, re.M).group(1))

    dossier = await verified_firm_with_dossier(db, firm)
    await client.post(f"/v1/dossiers/{dossier.id}/mandate")
    monkeypatch.setattr(metrics, "_counted_at", -metrics.COUNTS_INTERVAL)  # counted at the next scrape
    async with httpx.AsyncClient(base_url=api) as prometheus:
        await prometheus.post("/v1/webhooks/yousign", content=b"{}")  # unsigned: rejected, and counted

        # Refused as it streams in, past the limit (no Content-Length to refuse it by): counted too.
        async def streamed():
            for _ in range(2):
                yield b"x" * 600_000

        await prometheus.post("/v1/webhooks/yousign", content=streamed())
        scraped = (await prometheus.get("/metrics")).text
        another = await verified_firm_with_dossier(db, firm, siret=establishment_siret(1))
        await client.post(f"/v1/dossiers/{another.id}/mandate")
        cached = (await prometheus.get("/metrics")).text  # within the interval: no new count
        monkeypatch.setattr(metrics, "_counted_at", -metrics.COUNTS_INTERVAL)
        recounted = (await prometheus.get("/metrics")).text
    assert drafts(cached) == drafts(scraped) and drafts(recounted) == drafts(scraped) + 1
    assert 'yousign_webhooks_total{result="401"}' in scraped
    assert 'yousign_webhooks_total{result="413"}' in scraped
    assert "yousign_webhook_seconds_bucket" in scraped


YOUSIGN_LIMITS = (60, 1200)  # per minute, per hour: YouSign's production limits


async def test_a_status_no_mandate_has_any_more_is_counted_zero():
    from starter.api.routes import metrics

    class Counts:
        def __init__(self, rows):
            self.rows = rows

        async def fetch(self, query, *args):
            return self.rows if query == metrics.MANDATE_COUNTS else []

        async def fetchval(self, query, *args):
            return 0

    await metrics._count(
        Counts([{"status": "failed", "n": 1}, {"status": "pending", "n": 2}]), YOUSIGN_LIMITS
    )
    await metrics._count(
        Counts([{"status": "pending", "n": 1}, {"status": "deleted", "n": 1}]), YOUSIGN_LIMITS
    )
    scraped = metrics.generate_latest(metrics.REGISTRY).decode()
    assert 'mandates{status="failed"} 0.0' in scraped and 'mandates{status="pending"} 1.0' in scraped


async def test_bulk_items_are_counted_until_their_batch_is_done(db, firm):
    from starter.api.routes import metrics
    from store import bulk

    def items(outcome: str) -> float:
        scraped = metrics.generate_latest(metrics.REGISTRY).decode()
        found = re.search(rf'^bulk_send_items\{{outcome="{outcome}"\}} (\S+)$', scraped, re.M)
        return float(found.group(1)) if found else 0.0

    await metrics._count(db, YOUSIGN_LIMITS)
    before = {outcome: items(outcome) for outcome in ("sent", "sending")}
    batch = await bulk.create_bulk_send(db, firm.id, [uuid4(), uuid4()])
    # Its run has started its last page (finished_at), one mandate is still being sent.
    await bulk.finish(db, batch.id, datetime.now(UTC))
    await db.execute(
        "UPDATE bulk_send_items SET outcome = CASE position WHEN 0 THEN 'sent' ELSE 'sending' END"
        " WHERE bulk_send_id = $1",
        batch.id,
    )
    await metrics._count(db, YOUSIGN_LIMITS)
    assert (items("sent") - before["sent"], items("sending") - before["sending"]) == (1, 1)
    await db.execute("UPDATE bulk_send_items SET outcome = 'sent' WHERE bulk_send_id = $1", batch.id)
    await metrics._count(db, YOUSIGN_LIMITS)  # done: no longer counted
    assert (items("sent"), items("sending")) == (before["sent"], before["sending"])


async def test_idle_bulk_sends_say_for_how_long_nothing_moved(db, firm):
    """What an operator alerts on: queued sends that nothing moves (the worker or YouSign gone)."""
    from starter.api.routes import metrics
    from store import bulk, dossiers

    def idle() -> float:
        scraped = metrics.generate_latest(metrics.REGISTRY).decode()
        return float(re.search(r"^bulk_send_idle_seconds (\S+)$", scraped, re.M).group(1))

    queued, moved = [
        await dossiers.create_dossier(db, firm.id, name=name, siret=None, legal_representative=None)
        for name in ("En file", "Écarté")
    ]
    batch = await bulk.create_bulk_send(db, firm.id, [queued.id, moved.id])
    async with db.acquire() as conn:
        # The database as if this batch were the only one in progress and nothing had been sent for
        # a day, its item queued 20 minutes ago; rolled back after.
        as_if = conn.transaction()
        await as_if.start()
        try:
            await conn.execute(
                "UPDATE bulk_send_items SET outcome = 'skipped' WHERE bulk_send_id <> $1"
                " AND outcome IN ('queued', 'sending')",
                batch.id,
            )
            await conn.execute(
                # (Other tests' mandates may be stamped with their own, later, clock.)
                "UPDATE mandates SET sent_at = least(sent_at, now()) - interval '1 day'"
                " WHERE sent_at IS NOT NULL"
            )
            await conn.execute(
                "UPDATE bulk_send_items SET updated_at = now() - interval '20 minutes'"
                " WHERE bulk_send_id = $1",
                batch.id,
            )
            await metrics._count(conn, YOUSIGN_LIMITS)
            assert 1195 <= idle() <= 1260
            assert "bulk_send_stall_after_seconds 300.0" in metrics.generate_latest(metrics.REGISTRY).decode()
            # One of its items settled a moment ago (skipped, no send): the batch moved, as its
            # stalled_since counts it.
            await conn.execute(
                "UPDATE bulk_send_items SET outcome = 'skipped', updated_at = now() - interval '1 minute'"
                " WHERE bulk_send_id = $1 AND dossier_id = $2",
                batch.id,
                moved.id,
            )
            await metrics._count(conn, YOUSIGN_LIMITS)
            assert 55 <= idle() <= 120
            await conn.execute(
                "UPDATE bulk_send_items SET outcome = 'skipped' WHERE bulk_send_id = $1", batch.id
            )
            await metrics._count(conn, YOUSIGN_LIMITS)
            assert idle() == 0  # nothing in progress: nothing idle, however long since the last send
        finally:
            await as_if.rollback()
    await db.execute("UPDATE bulk_send_items SET outcome = 'skipped' WHERE bulk_send_id = $1", batch.id)


async def test_temporal_refusing_is_a_503_that_leaves_nothing_half_done(dev_env, db, firm):
    from temporalio.client import Client

    from tests.helpers import TEST_CONVERTER

    # A namespace the server does not have: every workflow call is refused, as in an outage.
    target = dev_env.client.service_client.config.target_host
    temporal = await Client.connect(target, namespace="no-such-namespace", data_converter=TEST_CONVERTER)
    dossier = await verified_firm_with_dossier(db, firm)
    async with serving_api(test_settings(), db, temporal) as base_url:
        firm_api = await firm_client(db, base_url, firm)
        async with firm_api.http as client:
            generated = await client.post(f"/v1/dossiers/{dossier.id}/mandate")
            assert generated.status_code == 503 and generated.json()["title"]
            assert (await client.get(f"/v1/dossiers/{dossier.id}")).json()["mandate"] is None  # undone
            assert (await client.post(f"/v1/dossiers/{dossier.id}/mandate")).status_code == 503  # again

            batch = await client.post("/v1/bulk-sends", json={"dossier_ids": [str(dossier.id)]})
            assert batch.status_code == 503
            [bulk_id] = await db.fetchval("SELECT array_agg(id) FROM bulk_sends WHERE firm_id = $1", firm.id)
            closed = (await client.get(f"/v1/bulk-sends/{bulk_id}")).json()
            assert (closed["done"], closed["skipped"], closed["in_progress"], closed["eta"]) == (
                True,
                1,
                0,
                None,
            )

            before = await db.fetch("SELECT id, status FROM kyc_submissions WHERE firm_id = $1", firm.id)
            submitted = await client.put(
                "/v1/firm/legal-representative",
                data={**UPLOAD_FIELDS, "document_type": "passport"},
                files={"front": ("id.jpg", jpeg(), "image/jpeg")},
            )
            assert submitted.status_code == 503 and "submit the document again" in submitted.json()["detail"]
            # The firm stays verified as it was (its mandates go on), and no identity file is kept.
            verification = (await client.get("/v1/firm")).json()["legal_representative"]["verification"]
            assert verification["status"] == "verified"
    assert await db.fetch("SELECT id, status FROM kyc_submissions WHERE firm_id = $1", firm.id) == before
    kept = (
        "SELECT count(*) FROM kyc_files f JOIN kyc_submissions s ON s.id = f.submission_id"
        " WHERE s.firm_id = $1"
    )
    assert await db.fetchval(kept, firm.id) == 0


async def test_a_submission_whose_start_answer_was_lost_is_verified(client, db, firm, monkeypatch):
    from starter.api.routes import firm as firm_route

    monkeypatch.setattr(firm_route, "start_kyc_workflow", answer_lost(firm_route.start_kyc_workflow))
    submitted = await client.put(
        "/v1/firm/legal-representative",
        data={**UPLOAD_FIELDS, "document_type": "passport"},
        files={"front": ("id.jpg", jpeg(), "image/jpeg")},
    )
    assert submitted.status_code == 202, submitted.text

    async def verified():
        firm_out = (await client.get("/v1/firm")).json()
        return firm_out["legal_representative"]["verification"]["status"] == "verified" or None

    assert await eventually(verified)


async def test_a_submission_whose_start_temporal_cannot_confirm_is_kept(client, db, firm, monkeypatch):
    from temporalio.service import RPCError, RPCStatusCode

    from starter.api.routes import firm as firm_route
    from store import kyc

    async def slow(*args, **kwargs):  # Temporal slow: neither the start nor the check is answered
        raise RPCError("Deadline Exceeded", RPCStatusCode.DEADLINE_EXCEEDED, b"")

    monkeypatch.setattr(firm_route, "start_kyc_workflow", slow)
    monkeypatch.setattr(firm_route, "kyc_run_is_for", slow)
    submitted = await client.put(
        "/v1/firm/legal-representative",
        data={**UPLOAD_FIELDS, "document_type": "passport"},
        files={"front": ("id.jpg", jpeg(), "image/jpeg")},
    )
    assert submitted.status_code == 503 and "may not have started" in submitted.json()["detail"]
    # Kept, as a late start of its run expects (the sweep starts it if its start was lost).
    current = await kyc.current_submission(db, firm.id)
    assert (current.status, current.last_name) == ("pending", UPLOAD_FIELDS["last_name"])
    await db.execute("UPDATE kyc_submissions SET status = 'failed' WHERE id = $1", current.id)  # (settled)


async def test_two_submissions_at_once_verify_the_later_one(client, db, firm, dev_env):
    # A double click: the later submission supersedes the first and is the one being verified
    # (the first's start must not come last and leave the later one pending with no verification).
    def submit():
        return client.put(
            "/v1/firm/legal-representative",
            data={**UPLOAD_FIELDS, "document_type": "passport"},
            files={"front": ("id.jpg", jpeg(), "image/jpeg")},
        )

    answers = await asyncio.gather(submit(), submit(), submit())
    assert [a.status_code for a in answers] == [202, 202, 202]
    rows = await db.fetch(
        "SELECT id, status FROM kyc_submissions WHERE firm_id = $1 ORDER BY created_at", firm.id
    )
    assert [r["status"] for r in rows[:2]] == ["superseded", "superseded"]
    handle = dev_env.client.get_workflow_handle(kyc_workflow_id(firm.id))
    described = await handle.describe()  # operators find it by the firm, and read what it is
    assert {k.name: v for k, v in described.typed_search_attributes}["FirmId"] == str(firm.id)
    assert await described.static_summary() == "Identity check of the firm's legal representative"
    started = (await handle.fetch_history()).events[0].workflow_execution_started_event_attributes
    [verifying] = await dev_env.client.data_converter.decode(started.input.payloads, [KycWorkflowInput])
    assert verifying.submission_id == rows[2]["id"]


async def test_rows_stored_before_a_rule_was_tightened_are_still_read(client, db, firm):
    # Names the mandate PDF cannot print are refused since: those already stored still answer 200.
    dossier = await verified_firm_with_dossier(db, firm)
    await db.execute("UPDATE dossiers SET rep_last_name = 'Yamada 山田' WHERE id = $1", dossier.id)
    await db.execute("UPDATE firms SET platform_name = 'PA 東京' WHERE id = $1", firm.id)
    one = await client.get(f"/v1/dossiers/{dossier.id}")
    assert one.status_code == 200 and one.json()["legal_representative"]["last_name"] == "Yamada 山田"
    assert (await client.get("/v1/dossiers")).status_code == 200
    assert (await client.get("/v1/firm")).json()["platform"]["name"] == "PA 東京"
    # And the firm can correct it.
    fixed = await client.patch(f"/v1/dossiers/{dossier.id}", json={"legal_representative": REP})
    assert fixed.status_code == 200


async def test_a_mandate_that_failed_before_its_document_says_so(client, db, firm):
    dossier = await verified_firm_with_dossier(db, firm)
    await db.execute("UPDATE dossiers SET name = '山田 SARL' WHERE id = $1", dossier.id)  # an old row
    assert (await client.post(f"/v1/dossiers/{dossier.id}/mandate")).status_code == 201
    await mandate_reaches(client, dossier.id, "failed")
    answer = await client.get(f"/v1/dossiers/{dossier.id}/mandate/document")
    assert answer.status_code == 409 and "delete it and generate a new one" in answer.json()["detail"]
