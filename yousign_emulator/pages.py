"""HTML pages for people (French, no auth): index, signing page with plain forms, mailbox."""

from __future__ import annotations

from html import escape

from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from . import signing
from .errors import ApiError
from .models import Signer
from .state import EmulatorState
from .timeutil import iso

_STYLE = """body{font-family:system-ui,sans-serif;margin:2rem auto;max-width:60rem;color:#1d2433}
h1{font-size:1.5rem}table{border-collapse:collapse;width:100%}
td,th{border-bottom:1px solid #ddd;padding:.3rem;text-align:left;vertical-align:top}
.sign{background:#1e6b3a;color:#fff}.decline{background:#a12b2b;color:#fff}
button{border:0;padding:.6rem 1.2rem;border-radius:.3rem;font-size:1rem;cursor:pointer}
iframe{width:100%;height:40rem;border:1px solid #ccc}.box{background:#f4f6fa;padding:1rem;border-radius:.4rem}
pre{white-space:pre-wrap}"""

STATUS_FR = {
    "draft": "brouillon",
    "ongoing": "en cours",
    "done": "terminée",
    "declined": "refusée",
    "expired": "expirée",
    "canceled": "annulée",
    "deleted": "supprimée",
    "initiated": "en attente",
    "notified": "invité(e)",
    "signed": "signé",
    "pending": "en attente",
    "verified": "vérifiée",
    "failed": "échouée",
    "inconclusive": "non concluante",
}


def _page(title: str, body: str, status_code: int = 200) -> HTMLResponse:
    html = (
        f'<!doctype html><html lang="fr"><head><meta charset="utf-8"><title>{escape(title)}</title>'
        f"<style>{_STYLE}</style></head><body>{body}</body></html>"
    )
    return HTMLResponse(html, status_code=status_code)


def _fr(status: str) -> str:
    return escape(STATUS_FR.get(status, status))


class Pages:
    def __init__(self, state: EmulatorState) -> None:
        self.state = state

    async def index(self, request: Request) -> Response:
        state = self.state
        state.sweep_expired()
        rows = []
        for sr in reversed(state.signature_requests.values()):
            signers = "<br>".join(
                f'<a href="/sign/{s.id}">{escape(s.info["first_name"])} {escape(s.info["last_name"])}</a>'
                f" ({_fr(s.status)})"
                for s in state.sr_signers(sr)
            )
            rows.append(
                f"<tr><td>{escape(sr.name)}<br><small>{sr.id}</small></td><td>{_fr(sr.status)}</td>"
                f"<td>{escape(sr.external_id or '')}</td><td>{signers}</td></tr>"
            )
        kyc = "".join(
            f"<tr><td>{v.id}</td><td>{escape(v.last_name or '')}</td><td>{_fr(v.status)}</td>"
            f"<td>{escape(', '.join(v.status_codes))}</td></tr>"
            for v in reversed(state.identity_documents.values())
        )
        body = (
            "<h1>Émulateur YouSign v3</h1>"
            f'<p>API : <code>{escape(state.public_url)}/v3</code> · <a href="/mailbox">Boîte mail</a>'
            f" ({len(state.mailbox)}) · webhooks émis : {len(state.webhook_events)}</p>"
            "<h2>Demandes de signature</h2><table><tr><th>Nom</th><th>Statut</th><th>external_id</th>"
            f"<th>Signataires</th></tr>{''.join(rows) or '<tr><td colspan=4>Aucune</td></tr>'}</table>"
            "<h2>Vérifications d'identité</h2><table>"
            "<tr><th>Id</th><th>Nom</th><th>Statut</th><th>Codes</th></tr>"
            f"{kyc or '<tr><td colspan=4>Aucune</td></tr>'}</table>"
        )
        return _page("Émulateur YouSign", body)

    def _signer(self, request: Request) -> Signer:
        return self.state.signer(request.path_params["signer_id"])

    async def sign_page(self, request: Request) -> Response:
        try:
            signer = self._signer(request)
        except ApiError:
            return _page("Lien invalide", "<h1>Ce lien de signature n'existe pas.</h1>", 404)
        sr = self.state.signature_request(signer.signature_request_id)
        name = f"{signer.info['first_name']} {signer.info['last_name']}"
        docs = "".join(
            f'<h3>{escape(d.filename)}</h3><iframe src="/sign/{signer.id}/documents/{d.id}"></iframe>'
            for d in self.state.sr_documents(sr).values()
        )
        can_sign = sr.status == "ongoing" and signer.status == "notified"
        if can_sign:
            decline = (
                f'<form method="post" action="/sign/{signer.id}/decline"><p><label>Motif du refus<br>'
                '<textarea name="reason" rows="2" cols="60" required></textarea></label></p>'
                '<button class="decline" type="submit">Refuser</button></form>'
                if sr.signers_allowed_to_decline
                else "<p><small>Le refus n'est pas autorisé pour cette demande.</small></p>"
            )
            actions = (
                f'<form method="post" action="/sign/{signer.id}/sign">'
                f'<button class="sign" type="submit">Signer</button></form>{decline}'
            )
        else:
            actions = (
                f"<p class=box>Signature impossible : demande {_fr(sr.status)}, "
                f"signataire {_fr(signer.status)}.</p>"
            )
        invitation = "vous êtes invité(e) à signer" if can_sign else "voici"
        body = (
            f"<h1>{escape(sr.name)}</h1><p>Bonjour <strong>{escape(name)}</strong> "
            f"({escape(signer.info['email'])}), {invitation} le(s) document(s) ci-dessous.</p>"
            f"{docs}<div class=box>{actions}</div>"
        )
        return _page(f"Signature : {sr.name}", body)

    async def sign(self, request: Request) -> Response:
        return await self._act(request, decline=False)

    async def decline(self, request: Request) -> Response:
        return await self._act(request, decline=True)

    async def _act(self, request: Request, *, decline: bool) -> Response:
        try:
            signer = self._signer(request)
            if decline:
                reason = str((await request.form()).get("reason") or "").strip() or "Aucun motif"
                signing.decline(self.state, signer, reason)
            else:
                signing.sign(self.state, signer)
        except ApiError as exc:
            return _page(
                "Action impossible", f"<h1>Action impossible</h1><p>{escape(exc.detail)}</p>", exc.status_code
            )
        redirect = signer.redirect_urls.get("decline" if decline else "success")
        link = f'<p><a href="{escape(redirect)}">Continuer</a></p>' if redirect else ""
        if decline:
            return _page("Signature refusée", f"<h1>Vous avez refusé de signer.</h1>{link}")
        return _page("Document signé", f"<h1>Merci, le document est signé.</h1>{link}")

    async def document(self, request: Request) -> Response:
        try:
            signer = self._signer(request)
        except ApiError:
            return Response(status_code=404)
        sr = self.state.signature_request(signer.signature_request_id)
        doc = self.state.sr_documents(sr).get(request.path_params["document_id"])
        if doc is None:
            return Response(status_code=404)
        content = doc.signed_content if sr.status == "done" and doc.signed_content else doc.content
        return Response(
            content,
            media_type="application/pdf",
            headers={"Content-Disposition": f'inline; filename="{doc.filename}"'},
        )

    async def mailbox(self, request: Request) -> Response:
        items = "".join(
            f"<div class=box><p><strong>À :</strong> {escape(e.to)} · {iso(e.sent_at)}<br>"
            f"<strong>Objet :</strong> {escape(e.subject)}</p><pre>{escape(e.body)}</pre>"
            + (f'<p><a href="{escape(e.link)}">Ouvrir le lien</a></p>' if e.link else "")
            + "</div><br>"
            for e in reversed(self.state.mailbox)
        )
        return _page("Boîte mail", f'<h1>Boîte mail</h1><p><a href="/">Accueil</a></p>{items or "Vide."}')

    async def mailbox_json(self, request: Request) -> Response:
        return JSONResponse(
            [
                {
                    "id": e.id,
                    "to": e.to,
                    "subject": e.subject,
                    "body": e.body,
                    "kind": e.kind,
                    "sent_at": iso(e.sent_at),
                    "link": e.link,
                    "signature_request_id": e.signature_request_id,
                    "signer_id": e.signer_id,
                }
                for e in reversed(self.state.mailbox)
            ]
        )


def page_routes(state: EmulatorState) -> list[Route]:
    p = Pages(state)
    return [
        Route("/", p.index, methods=["GET"]),
        Route("/sign/{signer_id}", p.sign_page, methods=["GET"]),
        Route("/sign/{signer_id}/sign", p.sign, methods=["POST"]),
        Route("/sign/{signer_id}/decline", p.decline, methods=["POST"]),
        Route("/sign/{signer_id}/documents/{document_id}", p.document, methods=["GET"]),
        Route("/mailbox", p.mailbox, methods=["GET"]),
        Route("/mailbox.json", p.mailbox_json, methods=["GET"]),
    ]
