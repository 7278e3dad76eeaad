"""Structured JSON logs (structlog) for every process; level from LOG_LEVEL.

Log ids (firm, dossier, mandate), never names, emails or SIRETs: logs leave the database's protection.
"""

from __future__ import annotations

import logging
import traceback
from typing import Any

import structlog


class WithoutQueryStrings(logging.Filter):
    """uvicorn's access log without query strings: `?search=` holds names and SIRETs."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple) and len(record.args) == 5:  # client, method, path, version, status
            client, method, path, version, status = record.args
            record.args = (client, method, str(path).partition("?")[0], version, status)
        return True


def without_messages(error: BaseException) -> str:
    """A traceback with every exception's type (and ApplicationError's own type) but no message."""
    chain, seen, current = [], set(), error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        chain.append(current)
        current = current.__cause__ or (None if current.__suppress_context__ else current.__context__)
    lines = []
    for link in reversed(chain):
        lines += ["Traceback (most recent call last):\n", *traceback.format_tb(link.__traceback__)]
        kind = getattr(link, "type", None)
        named = f" ({kind})" if isinstance(kind, str) else ""
        lines.append(f"{type(link).__module__}.{type(link).__qualname__}{named}: (message withheld)\n")
    return "".join(lines)


def withhold_sdk_error_messages(_: Any, __: str, event_dict: dict[str, Any]) -> dict[str, Any]:
    """The Temporal SDK logs a failed activity (or workflow task) with its exception, whose message
    may quote what YouSign or PostgreSQL said of a client (a name, an e-mail, a SIRET): its frames
    and types stay, its messages go. The run's failure keeps them, sealed, in Temporal."""
    record = event_dict.get("_record")
    exc_info = event_dict.get("exc_info")
    if record is not None and record.name.startswith("temporalio") and isinstance(exc_info, tuple):
        del event_dict["exc_info"]
        if exc_info[1] is not None:
            event_dict["exception"] = without_messages(exc_info[1])
    return event_dict


def configure_logging(level: str = "INFO") -> None:
    """Ours and the libraries' (the Temporal SDK, httpx, uvicorn...) alike: one JSON object a line,
    so that a log shipper reads every line, tracebacks included."""
    numeric = logging.getLevelNamesMapping().get(level.upper(), logging.INFO)
    stamped = structlog.processors.TimeStamper(fmt="iso", utc=True)
    handler = logging.StreamHandler()
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=[
                structlog.stdlib.add_log_level,
                structlog.stdlib.add_logger_name,
                stamped,
                withhold_sdk_error_messages,
            ],
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                structlog.processors.format_exc_info,
                structlog.processors.JSONRenderer(),
            ],
        )
    )
    root = logging.getLogger()
    root.handlers = [handler]
    root.setLevel(numeric)
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            stamped,
            structlog.processors.format_exc_info,
            structlog.processors.JSONRenderer(),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        cache_logger_on_first_use=True,
    )
    logging.getLogger("uvicorn.access").addFilter(WithoutQueryStrings())
