"""Validation of the JSON bodies and query strings of the /v3 subset, with the OAS constraints."""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from .checks import MISSING, Checker, require_object
from .errors import invalid
from .models import Document
from .timeutil import add_months, is_valid_timezone, today_in

SR_STATUSES = (
    "draft",
    "ongoing",
    "done",
    "deleted",
    "expired",
    "canceled",
    "approval",
    "rejected",
    "declined",
    "paused",
)
AUDIT_TRAIL_LOCALES = ("de", "en", "es", "fr", "it", "pt", "ro")
SIGNER_LOCALES = ("en", "fr", "de", "it", "nl", "es", "pl")
SIGNATURE_LEVELS = ("electronic_signature", "advanced_electronic_signature", "qualified_electronic_signature")
AUTH_MODES = ("otp_email", "otp_sms", "no_otp")
CANCEL_REASONS = ("contractualization_aborted", "errors_in_document", "other")
FIELD_TYPES = ("signature", "mention", "text", "checkbox", "radio_group")

_EXTERNAL_ID = re.compile(r"^[\w\-@.%+]+$")
_DATE = re.compile(r"^\d{4}-(0[1-9]|1[012])-(0[1-9]|[12][0-9]|3[01])$")

# Keys of "New Signature Request From Scratch"; the OAS puts additionalProperties: false on the body.
_SR_KEYS = (
    "name",
    "delivery_mode",
    "ordered_signers",
    "ordered_approvers",
    "custom_recipient_order",
    "reminder_settings",
    "timezone",
    "email_custom_note",
    "expiration_date",
    "template_id",
    "external_id",
    "branding_id",
    "custom_experience_id",
    "documents",
    "signers",
    "workspace_id",
    "audit_trail_locale",
    "signers_allowed_to_decline",
    "email_notification",
    "template_placeholders",
    "archiving",
    "labels",
    "workflow_session_id",
    "previous_attempt_id",
)
_UNSUPPORTED = "Not supported by the YouSign emulator."


def check_expiration_date(checker: Checker, name: str, value: Any, tz_name: str) -> date | None:
    text = checker.string(name, value, pattern=_DATE)
    if text is None:
        return None
    try:
        day = date.fromisoformat(text)
    except ValueError:
        checker.add(name, "This value is not a valid date.")
        return None
    today = today_in(tz_name)
    if day < today:
        checker.add(name, "The expiration date cannot be in the past.")
    elif day > add_months(today, 12):
        checker.add(name, "The expiration date cannot be more than one year after initiation.")
    return day


def validate_create_signature_request(raw: Any) -> dict[str, Any]:
    body = require_object(raw)
    c = Checker()
    if "signature_request_id" in body:
        raise invalid("signature_request_id", "Duplicating a signature request is " + _UNSUPPORTED.lower())
    c.unknown_keys(body, _SR_KEYS)
    out: dict[str, Any] = {}
    out["name"] = c.string("name", c.required(body, "name"), min_len=1, max_len=128)
    out["delivery_mode"] = c.enum("delivery_mode", c.required(body, "delivery_mode"), ("none", "email"))
    for key in (
        "ordered_signers",
        "ordered_approvers",
        "custom_recipient_order",
        "signers_allowed_to_decline",
    ):
        out[key] = bool(c.boolean(key, body.get(key, MISSING)))
    out["reminder_settings"] = _reminder_settings(c, body.get("reminder_settings", MISSING))
    tz_name = body.get("timezone", "Europe/Paris")
    if not isinstance(tz_name, str) or not is_valid_timezone(tz_name):
        c.add("timezone", "This value is not a valid timezone.")
        tz_name = "Europe/Paris"
    out["timezone"] = tz_name
    out["email_custom_note"] = c.string(
        "email_custom_note", body.get("email_custom_note", MISSING), max_len=500, nullable=True
    )
    out["expiration_date"] = check_expiration_date(
        c, "expiration_date", body.get("expiration_date", MISSING), tz_name
    )
    out["external_id"] = c.string(
        "external_id",
        body.get("external_id", MISSING),
        min_len=1,
        max_len=255,
        pattern=_EXTERNAL_ID,
        nullable=True,
    )
    for key in (
        "branding_id",
        "custom_experience_id",
        "workspace_id",
        "workflow_session_id",
        "previous_attempt_id",
    ):
        out[key] = c.uuid(key, body.get(key, MISSING))
    out["audit_trail_locale"] = c.enum(
        "audit_trail_locale", body.get("audit_trail_locale", MISSING), AUDIT_TRAIL_LOCALES, nullable=True
    )
    out["email_notification"] = c.obj("email_notification", body.get("email_notification", MISSING))
    labels = c.array("labels", body.get("labels", MISSING), max_items=50) or []
    out["labels"] = [c.uuid(f"labels[{i}]", label, nullable=False) for i, label in enumerate(labels)]
    for key in ("template_id", "documents", "signers", "template_placeholders"):
        if body.get(key) not in (None, [], MISSING):
            c.add(key, _UNSUPPORTED)
    c.raise_if_any()
    return out


# UpdateSignatureRequest fields the emulator applies; the others of the contract are refused as unsupported.
_SR_UPDATE_KEYS = ("name", "expiration_date", "external_id")


def validate_update_signature_request(raw: Any, tz_name: str) -> dict[str, Any]:
    body = require_object(raw)
    c = Checker()
    for key in body:
        if key not in _SR_UPDATE_KEYS:
            c.add(key, _UNSUPPORTED if key in _SR_KEYS else "This field was not expected.")
    out: dict[str, Any] = {}
    if "name" in body:
        out["name"] = c.string("name", body["name"], min_len=1, max_len=128)
    if "expiration_date" in body:
        out["expiration_date"] = check_expiration_date(c, "expiration_date", body["expiration_date"], tz_name)
    if "external_id" in body:
        out["external_id"] = c.string(
            "external_id", body["external_id"], min_len=1, max_len=255, pattern=_EXTERNAL_ID, nullable=True
        )
    c.raise_if_any()
    return out


def _reminder_settings(c: Checker, value: Any) -> dict[str, int] | None:
    settings = c.obj("reminder_settings", value)
    if settings is None:
        return None
    c.unknown_keys(settings, ("interval_in_days", "max_occurrences"), "reminder_settings.")
    interval = c.enum(
        "reminder_settings.interval_in_days",
        c.required(settings, "interval_in_days", "reminder_settings."),
        (1, 2, 7, 14),
    )
    occurrences = c.integer(
        "reminder_settings.max_occurrences",
        c.required(settings, "max_occurrences", "reminder_settings."),
        minimum=1,
        maximum=10,
    )
    if interval is None or occurrences is None:
        return None
    return {"interval_in_days": interval, "max_occurrences": occurrences}


def validate_create_signer(raw: Any, documents: dict[str, Document]) -> dict[str, Any]:
    """From-scratch variant only; `documents` are the signature request's documents, for field checks."""
    body = require_object(raw)
    c = Checker()
    for key in ("user_id", "contact_id", "verified_identity_id"):
        if key in body:
            raise invalid(
                key, "Creating a signer from a user, contact or verified identity is " + _UNSUPPORTED.lower()
            )
    out: dict[str, Any] = {}
    info = c.obj("info", c.required(body, "info"), nullable=False)
    if info is not None:
        c.unknown_keys(info, ("first_name", "last_name", "email", "phone_number", "locale"), "info.")
        out["info"] = {
            "first_name": c.human_name("info.first_name", c.required(info, "first_name", "info.")),
            "last_name": c.human_name("info.last_name", c.required(info, "last_name", "info.")),
            "email": c.email("info.email", c.required(info, "email", "info.")),
            "phone_number": c.phone("info.phone_number", info.get("phone_number")),
            "locale": c.enum("info.locale", c.required(info, "locale", "info."), SIGNER_LOCALES),
        }
    out["signature_level"] = c.enum("signature_level", c.required(body, "signature_level"), SIGNATURE_LEVELS)
    mode = c.enum(
        "signature_authentication_mode",
        body.get("signature_authentication_mode", MISSING),
        AUTH_MODES,
        nullable=True,
    )
    if mode == "otp_sms" and info is not None and not info.get("phone_number"):
        c.add("info.phone_number", "A phone number is mandatory with the otp_sms authentication mode.")
    out["signature_authentication_mode"] = mode
    out["delivery_mode"] = c.enum(
        "delivery_mode", body.get("delivery_mode", MISSING), ("email", "none"), nullable=True
    )
    out["redirect_urls"] = c.obj("redirect_urls", body.get("redirect_urls", MISSING))
    out["custom_text"] = c.obj("custom_text", body.get("custom_text", MISSING))
    fields = c.array("fields", body.get("fields", MISSING)) or []
    out["fields"] = [_field(c, f"fields[{i}]", item, documents) for i, item in enumerate(fields)]
    c.raise_if_any()
    return out


def _field(c: Checker, name: str, raw: Any, documents: dict[str, Document]) -> dict[str, Any]:
    item = c.obj(name, raw, nullable=False)
    if item is None:
        return {}
    p = name + "."
    kind = c.enum(p + "type", c.required(item, "type", p), FIELD_TYPES)
    document_id = c.uuid(p + "document_id", c.required(item, "document_id", p), nullable=False)
    page = c.integer(p + "page", c.required(item, "page", p), minimum=1)
    x = c.integer(p + "x", c.required(item, "x", p), minimum=0, maximum=32767)
    y = c.integer(p + "y", c.required(item, "y", p), minimum=0, maximum=32767)
    width = height = None
    if kind == "signature":
        width = c.integer(p + "width", item.get("width", 85), minimum=85, maximum=2000)
        height = c.integer(p + "height", item.get("height", 37), minimum=37, maximum=1000)
        c.string(p + "reason", item.get("reason", MISSING), max_len=150, nullable=True)
    elif kind == "mention":
        c.string(p + "mention", c.required(item, "mention", p), max_len=255, nullable=False)
        width = c.integer(p + "width", item.get("width", 24), minimum=24, maximum=32767)
        height = c.integer(p + "height", item.get("height", 24), minimum=24, maximum=32767)
        if height is not None and height != 24 and height % 15:
            c.add(p + "height", "The height must be 24 or a multiple of 15 greater than 24.")
    document = documents.get(document_id or "")
    if document_id is not None and document is None:
        c.add(p + "document_id", "This document does not belong to the signature request.")
    elif document is not None and document.nature != "signable_document":
        c.add(p + "document_id", "Fields can only be placed on a signable_document.")
    elif document is not None and page is not None and x is not None and y is not None:
        if page > len(document.page_sizes):
            c.add(p + "page", f"The document has only {len(document.page_sizes)} page(s).")
        else:
            page_width, page_height = document.page_sizes[page - 1]
            size = f"page {page} is {page_width:.0f}x{page_height:.0f} pt"
            if x + (width or 0) > page_width + 0.5:
                c.add(p + "x", f"The field does not fit in the page width ({size}).")
            if y + (height or 0) > page_height + 0.5:
                c.add(p + "y", f"The field does not fit in the page height ({size}).")
    extra = {
        k: v for k, v in item.items() if k not in {"type", "document_id", "page", "x", "y", "width", "height"}
    }
    return {
        "type": kind,
        "document_id": document_id,
        "page": page,
        "x": x,
        "y": y,
        "width": width,
        "height": height,
        "extra": extra,
    }


def validate_cancel(raw: Any) -> dict[str, Any]:
    body = require_object(raw)
    c = Checker()
    c.unknown_keys(body, ("reason", "custom_note"))
    reason = c.enum("reason", c.required(body, "reason"), CANCEL_REASONS)
    note = c.string("custom_note", body.get("custom_note", MISSING), max_len=500, nullable=True)
    c.raise_if_any()
    return {"reason": reason, "custom_note": note}


# Date filters of the signature request list: field -> operators, each a day range [first, last].
DATE_FILTER_FIELDS = ("created_at", "activated_at", "completed_at", "declined_at")
DayRange = tuple[date, date]


@dataclass
class ListQuery:
    limit: int
    after: str | None
    statuses: set[str] | None
    external_id: str | None
    dates: dict[str, list[DayRange]]


def parse_list_query(params: list[tuple[str, str]]) -> ListQuery:
    c = Checker()
    limit, after, statuses, external_id = 100, None, None, None
    dates: dict[str, list[DayRange]] = {}
    for key, value in params:
        field, _, operator = key.partition("[")
        if key == "limit":
            limit = (
                c.integer("limit", int(value) if value.isdigit() else value, minimum=1, maximum=100) or 100
            )
        elif key == "after":
            after = _decode_cursor(c, value)
        elif key in ("status[eq]", "status[in]", "status[in][]"):
            values = {v.strip() for v in value.split(",") if v.strip()}
            for status in values:
                c.enum(key, status, SR_STATUSES)
            statuses = (statuses or set()) | values
        elif key == "external_id[eq]":
            external_id = value
        elif field in DATE_FILTER_FIELDS:
            day_range = _day_range(c, key, operator.rstrip("]"), value)
            if day_range:
                dates.setdefault(field, []).append(day_range)
    c.raise_if_any()
    return ListQuery(limit=limit, after=after, statuses=statuses, external_id=external_id, dates=dates)


def _day_range(c: Checker, key: str, operator: str, value: str) -> DayRange | None:
    """`eq`, `before`, `after` (both exclusive) or `between` (inclusive), on yyyy-mm-dd days."""
    try:
        days = [date.fromisoformat(part) for part in value.split(",")]
    except ValueError:
        c.add(key, "The date format required is yyyy-mm-dd.")
        return None
    if operator == "between" and len(days) == 2:
        return days[0], days[1]
    if len(days) != 1:
        c.add(key, "Expected one date (two for between).")
        return None
    day = days[0]
    ranges = {
        "eq": (day, day),
        "before": (date.min, day - timedelta(days=1)),
        "after": (day + timedelta(days=1), date.max),
    }
    if operator not in ranges:
        c.add(key, "Allowed operators: eq, between, before, after.")
        return None
    return ranges[operator]


def encode_cursor(resource_id: str) -> str:
    return base64.urlsafe_b64encode(resource_id.encode()).decode().rstrip("=")


def _decode_cursor(c: Checker, value: str) -> str | None:
    try:
        return base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError):
        c.add("after", "This cursor is not valid.")
        return None
