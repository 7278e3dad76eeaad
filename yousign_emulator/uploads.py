"""Multipart parsing of the two upload endpoints: documents of a signature request and identity documents."""

from __future__ import annotations

import io
import re
from dataclasses import dataclass
from typing import Any

from PIL import Image
from starlette.datastructures import UploadFile
from starlette.requests import Request

from .checks import MISSING, Checker
from .errors import invalid, unsupported_media_type

MAX_DOCUMENT_BYTES = 50 * 1024 * 1024  # YouSign "limits" page: 50 MB per uploaded document
MAX_IDENTITY_BYTES = 10 * 1024 * 1024  # OAS: identity document files up to 10 MB
_DOCUMENT_NAME = re.compile(r"^(?!\s)[^/\\]+(?<!\s)$")
_DOCUMENT_KEYS = {
    "file",
    "nature",
    "insert_after_id",
    "password",
    "name",
    "initials",
    "parse_anchors",
    "excluded_approvers",
    "excluded_signers",
}
_IDENTITY_KEYS = {
    "file",
    "additional_file",
    "first_name",
    "last_name",
    "type",
    "workspace_id",
    "workflow_session_id",
    "previous_attempt_id",
    "min_age",
    "max_age",
    "prohibited_countries",
}
IDENTITY_TYPES = ("id_card", "passport", "residence_permit", "ita_ts_cns")


def sniff(content: bytes) -> str | None:
    """Content type from magic bytes; the declared part content type is not trusted (as a real server)."""
    if content.startswith(b"%PDF-"):
        return "application/pdf"
    if content.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if content.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if content.startswith(b"PK\x03\x04"):
        return "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
    return None


async def _form(request: Request) -> list[tuple[str, Any]]:
    if not request.headers.get("content-type", "").startswith("multipart/form-data"):
        raise unsupported_media_type("multipart/form-data")
    try:
        form = await request.form(max_part_size=MAX_DOCUMENT_BYTES)
    except Exception as exc:  # malformed multipart bodies
        raise invalid("body", f"Malformed multipart body: {exc}") from exc
    return list(form.multi_items())


async def _read_file(c: Checker, name: str, value: Any, max_bytes: int) -> bytes | None:
    if value is MISSING:
        return None
    if not isinstance(value, UploadFile):
        c.add(name, "This value should be a file (multipart part with a filename).")
        return None
    content = await value.read()
    if not content:
        c.add(name, "An empty file is not allowed.")
        return None
    if len(content) > max_bytes:
        c.add(name, f"The file is too large. Allowed maximum size is {max_bytes // (1024 * 1024)} MB.")
        return None
    return content


@dataclass
class DocumentUpload:
    filename: str
    nature: str
    content: bytes  # always a PDF: images are converted like YouSign does


async def parse_document_upload(request: Request) -> DocumentUpload:
    items = await _form(request)
    fields = dict(items)
    c = Checker()
    c.unknown_keys(fields, _DOCUMENT_KEYS)
    nature = c.enum("nature", c.required(fields, "nature"), ("attachment", "signable_document"))
    name = c.string("name", fields.get("name", MISSING), min_len=1, max_len=128, pattern=_DOCUMENT_NAME)
    content = await _read_file(c, "file", c.required(fields, "file"), MAX_DOCUMENT_BYTES)
    kind = sniff(content) if content else None
    if content is not None and kind is None:
        c.add("file", "Accepted formats are PDF, DOCX, JPEG, JPG and PNG.")
    elif kind is not None and kind.startswith("image/") and nature == "signable_document":
        c.add("nature", "JPEG, JPG and PNG files can only be of attachment nature.")
    elif kind is not None and kind.endswith("document"):
        c.add("file", "DOCX conversion is not supported by the YouSign emulator: upload a PDF.")
    c.raise_if_any()
    assert content is not None and nature is not None and kind is not None
    if kind.startswith("image/"):
        content = _image_to_pdf(content)
    upload = fields["file"]
    filename = name or (upload.filename if isinstance(upload, UploadFile) else None) or "document.pdf"
    return DocumentUpload(filename=filename, nature=nature, content=content)


def _image_to_pdf(content: bytes) -> bytes:
    try:
        image = Image.open(io.BytesIO(content))
        buffer = io.BytesIO()
        image.convert("RGB").save(buffer, format="PDF")
    except Exception as exc:
        raise invalid("file", "The image could not be read.") from exc
    return buffer.getvalue()


@dataclass
class IdentityUpload:
    files: list[tuple[str, bytes]]  # (content type, bytes): file then additional_file
    first_name: str | None
    last_name: str | None
    type: str | None
    workspace_id: str | None


async def parse_identity_upload(request: Request) -> IdentityUpload:
    items = await _form(request)
    fields = dict(items)
    c = Checker()
    c.unknown_keys({k.removesuffix("[]"): v for k, v in fields.items()}, _IDENTITY_KEYS)
    first = c.string("first_name", fields.get("first_name", MISSING), min_len=1, max_len=255)
    last = c.string("last_name", fields.get("last_name", MISSING), min_len=1, max_len=255)
    if (first is None) != (last is None) and not c.problems:
        missing = "last_name" if last is None else "first_name"
        c.add(missing, "first_name and last_name must be given together (verification with names).")
    kind = c.enum("type", fields.get("type", MISSING), IDENTITY_TYPES)
    workspace_id = c.uuid("workspace_id", fields.get("workspace_id", MISSING))
    files: list[tuple[str, bytes]] = []
    for key in ("file", "additional_file"):
        value = c.required(fields, key) if key == "file" else fields.get(key, MISSING)
        content = await _read_file(c, key, value, MAX_IDENTITY_BYTES)
        if content is None:
            continue
        content_type = sniff(content)
        if content_type not in ("application/pdf", "image/png", "image/jpeg"):
            c.add(key, "Accepted formats are PNG, JPEG, JPG and PDF.")
            continue
        files.append((content_type, content))
    c.raise_if_any()
    return IdentityUpload(files=files, first_name=first, last_name=last, type=kind, workspace_id=workspace_id)
