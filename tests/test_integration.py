"""One mandate from generation to signed on the real dev server, embedded PostgreSQL and the emulator."""

from __future__ import annotations

import io
from datetime import UTC
from pathlib import Path

import httpx
from pypdf import PdfReader

from store import dossiers, mandates
from tests.helpers import CLIENT_REP, test_settings, verified_firm_with_dossier
from tests.workflow_support import (
    deliver,
    generate_mandate,
    replay_and_keep,
    running_workers,
    send_and_wait_pending,
)

HISTORIES = Path(__file__).parent / "histories"


async def test_mandate_from_generation_to_signed(dev_env, db, firm, emulator, yousign, smtp_sink):
    settings = test_settings()
    dossier = await verified_firm_with_dossier(db, firm)
    async with running_workers(dev_env.client, settings, db, yousign, smtp_url=smtp_sink.url):
        run = await generate_mandate(dev_env.client, settings, db, dossier)
        assert (await run.wait_generated()).status == "draft"
        state = await send_and_wait_pending(run)

        # The client opens the link from YouSign's email and clicks "Sign", as a browser would.
        signer = emulator.state.signers[state.signer_id]
        async with httpx.AsyncClient(base_url=emulator.public_url) as browser:
            page = await browser.get(f"/sign/{signer.id}")
            assert page.status_code == 200 and "Signer" in page.text
            signed = await browser.post(f"/sign/{signer.id}/sign", data={})
            assert signed.status_code in (200, 303)
        await deliver(emulator, run, state.signature_request_id, "signer.done")
        result = await run.handle.result()

    assert result.status == "signed"
    mandate = await mandates.get_mandate(db, run.mandate.id)
    # signed_at comes from YouSign's event time, which has whole seconds only.
    assert mandate.status == "signed" and mandate.sent_at.replace(microsecond=0) <= mandate.signed_at
    assert mandate.signature_request_id == state.signature_request_id
    stored_dossier, live = await dossiers.get_dossier(db, firm.id, dossier.id)
    assert stored_dossier.einvoicing_status == "ready_for_designation" and live.id == mandate.id
    log = await mandates.events(db, mandate.id)
    assert [(e.from_status, e.to_status) for e in log] == [
        (None, "draft"),
        ("draft", "sending"),
        ("sending", "pending"),
        ("pending", "signed"),
    ]
    assert log[-1].cause == "webhook signer.done"
    signed_pdf = await mandates.get_document(db, mandate.id, "signed")
    text = "".join(p.extract_text() for p in PdfReader(io.BytesIO(signed_pdf)).pages)
    assert mandate.number in text
    # Block 7's date, written by YouSign's mention field on the line the PDF left under the signature.
    assert f"Signé le {mandate.signed_at.astimezone(UTC):%d-%m-%Y}" in text
    mails = [
        m
        for m in smtp_sink.to(str(CLIENT_REP.email))
        if mandate.number in m.get_body(("plain",)).get_content()
    ]
    assert len(mails) == 1 and "signé" in mails[0]["Subject"]
    attachment = next(mails[0].iter_attachments())
    assert attachment.get_content() == signed_pdf

    await replay_and_keep(run.handle, "mandate_signed")
