"""The happy path and the other ends of a signature request, over real HTTP."""

from __future__ import annotations

import io
import re
import zipfile
from datetime import UTC, datetime, timedelta

from pypdf import PdfReader

from tests.emulator.flows import add_signer, create_draft, ongoing, upload


async def test_create_upload_sign_on_the_page_then_download(emu, api, web):
    sr = await create_draft(api, external_id="mandate-42", audit_trail_locale="fr")
    assert sr["status"] == "draft" and sr["source"] == "public_api" and sr["external_id"] == "mandate-42"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+00:00", sr["expiration_date"])

    document = await upload(api, sr["id"], pages=2)
    assert document["total_pages"] == 2 and len(document["sha256"]) == 64
    signer = await add_signer(api, sr["id"], document["id"])
    assert signer["status"] == "initiated" and signer["signature_link"] is None

    activated = (await api.post(f"/signature_requests/{sr['id']}/activate")).json()
    assert activated["status"] == "ongoing" and activated["activated_at"]
    link = activated["signers"][0]["signature_link"]
    assert link == f"{emu.public_url}/sign/{signer['id']}"
    assert activated["signers"][0]["status"] == "notified"

    # YouSign's e-mail carries the link; the signer opens it and clicks "Signer" (a plain form post).
    [mail] = (await web.get("/mailbox.json")).json()
    assert mail["to"] == "jeanne@client.fr" and mail["link"] == link
    page = await web.get(link)
    assert page.status_code == 200 and "Jeanne Martin" in page.text and "invité(e) à signer" in page.text
    assert f'action="/sign/{signer["id"]}/sign"' in page.text and 'method="post"' in page.text
    pdf = await web.get(f"/sign/{signer['id']}/documents/{document['id']}")
    assert pdf.headers["content-type"] == "application/pdf"
    done_page = await web.post(f"/sign/{signer['id']}/sign", data={})
    assert done_page.status_code == 200 and "signé" in done_page.text
    reopened = await web.get(link)  # the link again, once signed: no invitation left to sign
    assert "invité(e) à signer" not in reopened.text and "Signature impossible" in reopened.text

    final = (await api.get(f"/signature_requests/{sr['id']}")).json()
    assert final["status"] == "done" and final["completed_at"]
    assert (await api.get(f"/signature_requests/{sr['id']}/signers/{signer['id']}")).json()["signed_at"]

    download = await api.get(
        f"/signature_requests/{sr['id']}/documents/download", params={"version": "completed"}
    )
    assert download.status_code == 200 and download.headers["content-type"] == "application/pdf"
    signed = PdfReader(io.BytesIO(download.content))
    assert len(signed.pages) == 3  # the two original pages plus the certificate page
    assert "Jeanne Martin" in signed.pages[0].extract_text()  # the stamp on the signature field
    assert "Jeanne Martin" in signed.pages[2].extract_text()

    trail = await api.get(f"/signature_requests/{sr['id']}/audit_trails/download")
    assert trail.headers["content-type"] == "application/pdf"
    assert "a signé" in PdfReader(io.BytesIO(trail.content)).pages[0].extract_text()
    mine = await api.get(f"/signature_requests/{sr['id']}/signers/{signer['id']}/audit_trails/download")
    assert mine.status_code == 200

    names = [e.event_name for e in emu.state.webhook_events]
    assert names == [
        "signature_request.activated",
        "signer.notified",
        "signer.done",
        "signature_request.done",
    ]
    assert [m["kind"] for m in (await web.get("/mailbox.json")).json()] == [
        "document_signed",
        "signature_request",
    ]


async def test_done_only_when_every_signer_signed_and_archive_is_a_zip(emu, api):
    sr, _, (first, second) = await ongoing(api, signers=2)
    emu.state.sign_signer(first["id"])
    assert (await api.get(f"/signature_requests/{sr['id']}")).json()["status"] == "ongoing"
    emu.state.sign_signer(second["id"])
    assert (await api.get(f"/signature_requests/{sr['id']}")).json()["status"] == "done"

    archive = await api.get(
        f"/signature_requests/{sr['id']}/documents/download",
        params={"version": "completed", "archive": "true"},
    )
    assert archive.headers["content-type"] == "application/zip"
    assert zipfile.ZipFile(io.BytesIO(archive.content)).namelist() == ["mandat.pdf"]
    trails = await api.get(f"/signature_requests/{sr['id']}/audit_trails/download")
    assert len(zipfile.ZipFile(io.BytesIO(trails.content)).namelist()) == 2
    merged = await api.get(f"/signature_requests/{sr['id']}/audit_trails/download", params={"merge": "true"})
    assert merged.headers["content-type"] == "application/pdf"


async def test_ordered_signers_are_notified_one_after_the_other(emu, api):
    sr, _, (first, _) = await ongoing(api, signers=2, ordered_signers=True)
    assert [s["status"] for s in sr["signers"]] == ["notified", "initiated"]
    emu.state.sign_signer(first["id"])
    listed = (await api.get(f"/signature_requests/{sr['id']}/signers")).json()
    assert [s["status"] for s in listed] == ["signed", "notified"]
    assert listed[1]["signature_link"]


async def test_decline_on_the_signing_page(emu, api, web):
    sr, _, [signer] = await ongoing(api, signers_allowed_to_decline=True)
    page = await web.get(f"/sign/{signer['id']}")
    assert f'action="/sign/{signer["id"]}/decline"' in page.text and 'name="reason"' in page.text
    result = await web.post(f"/sign/{signer['id']}/decline", data={"reason": "Montant erroné"})
    assert result.status_code == 200 and "refusé" in result.text

    body = (await api.get(f"/signature_requests/{sr['id']}")).json()
    assert body["status"] == "declined"
    assert body["decline_information"]["reason"] == "Montant erroné"
    assert body["decline_information"]["signer_id"] == signer["id"]
    declined = [e for e in emu.state.webhook_events if e.event_name.endswith(".declined")]
    assert [e.event_name for e in declined] == ["signer.declined", "signature_request.declined"]
    assert declined[0].payload["data"]["signer"]["status"] == "declined"
    # After the decision the page only shows the status.
    assert 'method="post"' not in (await web.get(f"/sign/{signer['id']}")).text


async def test_decline_needs_signers_allowed_to_decline(api, web):
    _, _, [signer] = await ongoing(api)
    assert "Refuser" not in (await web.get(f"/sign/{signer['id']}")).text
    refused = await web.post(f"/sign/{signer['id']}/decline", data={"reason": "non"})
    assert refused.status_code == 400


async def test_list_filters_and_cursor_pagination(api):
    ids = [(await create_draft(api, external_id=f"ext-{i}"))["id"] for i in range(5)]
    first = (await api.get("/signature_requests", params={"limit": 2})).json()
    assert [sr["id"] for sr in first["data"]] == ids[::-1][:2]  # newest first
    second = (
        await api.get("/signature_requests", params={"limit": 2, "after": first["meta"]["next_cursor"]})
    ).json()
    assert [sr["id"] for sr in second["data"]] == ids[::-1][2:4]
    last = (
        await api.get("/signature_requests", params={"limit": 2, "after": second["meta"]["next_cursor"]})
    ).json()
    assert [sr["id"] for sr in last["data"]] == [ids[0]] and last["meta"]["next_cursor"] is None

    by_external = (await api.get("/signature_requests", params={"external_id[eq]": "ext-3"})).json()
    assert [sr["id"] for sr in by_external["data"]] == [ids[3]]
    assert (await api.get("/signature_requests", params={"status[eq]": "ongoing"})).json()["data"] == []
    drafts = (await api.get("/signature_requests", params={"status[in]": "draft,done"})).json()
    assert len(drafts["data"]) == 5


async def test_list_date_filters_find_what_was_settled_after_a_day(emu, api):
    signed, _, [signer] = await ongoing(api)
    declined, _, [refuser] = await ongoing(api, signers_allowed_to_decline=True)
    await ongoing(api)  # still ongoing: never listed as settled
    emu.state.sign_signer(signer["id"])
    emu.state.decline_signer(refuser["id"], "pas d'accord")
    today = datetime.now(UTC).date()

    async def listed(**params: str) -> list[str]:
        response = await api.get("/signature_requests", params=params)
        assert response.status_code == 200, response.text
        return [sr["id"] for sr in response.json()["data"]]

    yesterday = (today - timedelta(days=1)).isoformat()
    assert await listed(**{"status[eq]": "done", "completed_at[after]": yesterday}) == [signed["id"]]
    assert await listed(**{"status[eq]": "done", "completed_at[after]": today.isoformat()}) == []
    assert await listed(**{"completed_at[eq]": today.isoformat()}) == [signed["id"]]
    assert await listed(**{"status[eq]": "declined", "declined_at[after]": yesterday}) == [declined["id"]]
    between = f"{yesterday},{today.isoformat()}"
    assert await listed(**{"declined_at[between]": between}) == [declined["id"]]
    bad = await api.get("/signature_requests", params={"completed_at[after]": "04/12/2026"})
    assert bad.status_code == 400 and "completed_at[after]" in bad.text


async def test_cancel_then_delete(emu, api):
    sr, _, _ = await ongoing(api)
    canceled = await api.post(
        f"/signature_requests/{sr['id']}/cancel", json={"reason": "contractualization_aborted"}
    )
    assert canceled.status_code == 201 and canceled.json()["status"] == "canceled"
    assert emu.state.webhook_events[-1].event_name == "signature_request.canceled"
    assert (await api.delete(f"/signature_requests/{sr['id']}")).status_code == 204
    assert (await api.get(f"/signature_requests/{sr['id']}")).json()["status"] == "deleted"
    gone = await api.delete(f"/signature_requests/{sr['id']}", params={"permanent_delete": "true"})
    assert gone.status_code == 204
    assert (await api.get(f"/signature_requests/{sr['id']}")).status_code == 404


async def test_index_page_links_requests_signers_and_mailbox(api, web):
    sr, _, [signer] = await ongoing(api)
    index = await web.get("/")
    assert sr["name"] in index.text and f'href="/sign/{signer["id"]}"' in index.text
    assert 'href="/mailbox"' in index.text
    mailbox = await web.get("/mailbox")
    assert sr["signers"][0]["signature_link"] in mailbox.text


def test_the_signed_copy_prints_names_beyond_windows_1252():
    # As YouSign does: the stamp and the certificate carry the signer's name as written.
    import io

    from pypdf import PdfReader

    from yousign_emulator.pdfs import Stamp, sample_pdf, signed_pdf

    stamp = Stamp(page=1, x=100, y=100, width=200, height=80, text="Signé par Łukasz Nguyễn")
    signed = signed_pdf(sample_pdf(), [stamp], ["Signataire : Łukasz Nguyễn"])
    pages = PdfReader(io.BytesIO(signed)).pages
    assert "Signé par Łukasz Nguyễn" in pages[0].extract_text()
    assert "Signataire : Łukasz Nguyễn" in pages[-1].extract_text()


async def test_a_draft_can_be_updated_not_an_active_request(api):
    sr = await create_draft(api)
    later = (datetime.now(UTC) + timedelta(days=60)).date().isoformat()
    updated = await api.patch(f"/signature_requests/{sr['id']}", json={"expiration_date": later})
    assert updated.status_code == 200 and updated.json()["expiration_date"].startswith(later)
    assert (await api.get(f"/signature_requests/{sr['id']}")).json()["expiration_date"].startswith(later)
    past = await api.patch(f"/signature_requests/{sr['id']}", json={"expiration_date": "2020-01-01"})
    assert past.status_code == 400 and "past" in past.text
    unsupported = await api.patch(f"/signature_requests/{sr['id']}", json={"ordered_signers": True})
    assert unsupported.status_code == 400 and "ordered_signers" in unsupported.text
    active, _, _ = await ongoing(api)
    refused = await api.patch(f"/signature_requests/{active['id']}", json={"expiration_date": later})
    assert refused.status_code == 400 and "ongoing" in refused.text
