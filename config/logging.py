"""Structured JSON logs (structlog) for every process; level from LOG_LEVEL.

Log ids (firm, dossier, mandate), never names, emails or SIRETs: logs leave the database's protection.
"""

from __future__ import annotations

import logging

import structlog


class WithoutQueryStrings(logging.Filter):
    """uvicorn's access log without query strings: `?search=` holds names and SIRETs."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple) and len(record.args) == 5:  # client, method, path, version, status
            client, method, path, version, status = record.args
            record.args = (client, method, str(path).partition("?")[0], version, status)
        return True


def configure_logging(level: str = "INFO") -> None:
    """Ours and the libraries' (the Temporal SDK, httpx, uvicorn...) alike: one JSON object a line,
    so that a log shipper reads every line, tracebacks included."""
    numeric = logging.getLevelNamesMapping().get(level.upper(), logging.INFO)
    stamped = structlog.processors.TimeStamper(fmt="iso", utc=True)
    handler = logging.StreamHandler()
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=[structlog.stdlib.add_log_level, structlog.stdlib.add_logger_name, stamped],
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
