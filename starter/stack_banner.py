"""What `make run` prints once everything is up: where each part is, and a first command to try."""

from __future__ import annotations

import re
from pathlib import Path

from config.settings import Settings
from starter.demo import DemoReport
from starter.stack_children import Child
from starter.stack_config import StackPlan, display_path

READY_LINE = "The stack is up. Ctrl-C stops everything."

_STATUS_LABELS = {
    "missing_information": "missing information",
    "ready_for_mandate": "ready for a mandate",
    "mandate_pending": "mandate pending",
    "ready_for_designation": "ready for designation (signed)",
    "mandate_refused": "refused",
    "mandate_expired": "expired",
}


_PASSWORD_PARAMETER = re.compile(r"([?&](?:ssl)?password=)[^&]*", re.IGNORECASE)


def redact(url: str) -> str:
    """A URL without its password (in its user part or as a `password=` parameter), to print."""
    scheme, separator, rest = url.partition("://")
    user_info, at, host_and_path = rest.rpartition("@")
    if separator and at and ":" in user_info:
        url = f"{scheme}://{user_info.split(':', 1)[0]}:***@{host_and_path}"
    return _PASSWORD_PARAMETER.sub(r"\1***", url)


def banner(
    plan: StackPlan,
    settings: Settings,
    report: DemoReport,
    logs: Path,
    children: list[Child],
) -> str:
    s = plan.stack
    api = f"http://127.0.0.1:{s.api_port}"
    rows: list[tuple[str, str]] = [("API", f"{api}/v1   docs {api}/docs")]
    if plan.dev_temporal:
        rows.append(
            (
                "Temporal UI",
                f"http://127.0.0.1:{s.temporal_ui_port}   (gRPC {settings.temporal_address}, "
                f"namespace {settings.temporal_namespace})",
            )
        )
    else:
        rows.append(("Temporal", f"{settings.temporal_address} (namespace {settings.temporal_namespace})"))
    if plan.emulator:
        emulator = f"http://127.0.0.1:{s.emulator_port}"
        rows.append(("YouSign emulator", f"{emulator}/   signing pages; its mailbox {emulator}/mailbox"))
    else:
        rows.append(("YouSign", f"{plan.yousign_base_url}"))
    if plan.mailbox:
        mailbox_dir = display_path(plan.data_dir / "mailbox")
        rows.append(
            (
                "Mailbox",
                f"http://127.0.0.1:{s.mailbox_port}/   "
                f"(SMTP 127.0.0.1:{s.smtp_port}, files in {mailbox_dir}/)",
            )
        )
    else:
        rows.append(("E-mail", f"SMTP_URL={redact(plan.smtp_url or '')}"))
    if plan.embedded_postgres:
        rows.append(("PostgreSQL", f"embedded, data in {display_path(plan.data_dir / 'postgres')}"))
    else:
        rows.append(("PostgreSQL", f"DATABASE_URL={redact(plan.database_url or '')}"))
    metrics = f"{api}/metrics (API)"
    if plan.worker_metrics_address:
        metrics += f", http://{plan.worker_metrics_address}/metrics (worker)"
    rows.append(("Metrics", metrics))
    names = ", ".join(child.name for child in children)
    rows.append(("Logs", f"{display_path(logs)}/<name>.log   ({names})"))
    rows.append(("", ""))
    demo, counts, representative = report.demo, report.counts, report.representative
    firm = demo.firm
    platform = f", platform {firm.platform.name}" if firm.platform else ""
    rows.append(("Demo firm", f"{firm.name} (SIREN {firm.siren}){platform}"))
    rows.append(("Demo API key", demo.api_key))
    if representative is None:
        rows.append(("Representative", "not submitted yet: PUT /v1/firm/legal-representative"))
    else:
        status = representative.status
        if status == "pending":
            status = "verification pending (a line below says when YouSign answered)"
        rows.append(("Representative", f"{representative.first_name} {representative.last_name}: {status}"))
    total = sum(counts.values())
    detail = ", ".join(f"{n} {_STATUS_LABELS.get(code, code)}" for code, n in counts.items())
    rows.append(("Dossiers", f"{total}" + (f" ({detail})" if detail else "")))

    width = max(len(label) for label, _ in rows) + 2
    rule = "-" * 78
    lines = ["", rule, f" {READY_LINE}", ""]
    lines += [f" {label.ljust(width)}{value}".rstrip() for label, value in rows]
    lines += [
        "",
        " Try:",
        f'   curl -H "Authorization: Bearer {demo.api_key}" {api}/v1/dossiers',
        rule,
        "",
    ]
    return "\n".join(lines)
