"""Whether a firm may have mandates generated and sent, from its representative's verification."""

from __future__ import annotations


def why_not_verified(state: str) -> str | None:
    """Why nothing goes out in the firm's name while its representative's verification is `state`
    (`not_submitted` when none was ever submitted), or None once verified. A new representative
    being checked stops it too: the one verified before may be the one the firm replaced."""
    if state == "verified":
        return None
    if state == "pending":
        then = "wait until GET /v1/firm says verified (YouSign answers within minutes)"
    else:
        then = "submit it with PUT /v1/firm/legal-representative"
    return f"the firm's legal representative is not verified ({state}): {then}"
