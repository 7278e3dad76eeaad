"""The pure domain rules, tested directly."""

import json
import re
import subprocess
import sys
import uuid
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from pydantic import ValidationError

from domain.calendar import (
    add_calendar_months,
    mandate_expires_at,
    next_reminder_allowed_at,
    reminder_allowed,
)
from domain.durations import parse_iso_duration
from domain.errors import RuleViolation
from domain.identifiers import normalize_siren, normalize_siret, spaced_siret
from domain.mandate_number import (
    issued_on_of,
    mandate_number,
    numbered_for_another_platform,
    platform_identifier,
)
from domain.models import LegalRepresentative, Platform
from domain.status import DossierStatus, MandateStatus, dossier_status

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize("siret", ["73282932000074", "55208131766522", "35600000000048", "35600000049837"])
def test_valid_sirets(siret):
    assert normalize_siret(siret) == siret


def test_siret_spaces_are_removed():
    assert normalize_siret("732 829 320 00074") == "73282932000074"
    # French typography groups digits with (narrow) no-break spaces.
    assert normalize_siret("732\u202f829\u202f320\u00a000074") == "73282932000074"


def test_a_spaced_siret_reads_back_as_itself():
    assert spaced_siret("73282932000074") == "732 829 320 00074"
    assert normalize_siret(spaced_siret("35600000049837")) == "35600000049837"


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("12345678912345", "checksum"),
        ("7328293200007", "14 digits, got 13"),
        ("7328293200007A", "only digits"),
        ("", "empty"),
        # La Poste's sum rule applies to La Poste only: same digit-sum trick elsewhere is refused.
        ("35600000049838", "checksum"),
        # Luhn-valid over 14 digits, but no company has SIREN 123456789: the mandate number needs one.
        ("12345678900007", "first 9 digits are not a valid SIREN"),
        # Zeros pass Luhn; INSEE assigns no SIREN of zeros (a placeholder typed in).
        ("00000000000000", "first 9 digits are zeros"),
        ("000 000 000 00018", "first 9 digits are zeros"),
    ],
)
def test_invalid_sirets_name_field_and_reason(value, reason):
    with pytest.raises(RuleViolation) as raised:
        normalize_siret(value, "dossier.siret")
    assert raised.value.field == "dossier.siret"
    assert reason in raised.value.message


def test_luhn_complete_appends_the_one_valid_digit():
    from domain.identifiers import luhn_complete, luhn_valid

    assert luhn_complete("73282932") == "732829320"
    assert luhn_complete("7328293200007") == "73282932000074"
    assert all(luhn_valid(luhn_complete(f"{n:08d}")) for n in range(0, 10**8, 9_999_991))


def test_la_poste_sum_rule_is_not_luhn():
    # 35600000049837 fails Luhn; accepted only through the La Poste digit-sum rule.
    from domain.identifiers import luhn_valid, siret_checksum_valid

    assert not luhn_valid("35600000049837")
    assert siret_checksum_valid("35600000049837")
    assert not siret_checksum_valid("35600000049838")  # digit sum not a multiple of 5, nor Luhn


@pytest.mark.parametrize("siren", ["732829320", "552081317", "356000000"])
def test_valid_sirens(siren):
    assert normalize_siren(siren) == siren


def test_invalid_siren():
    with pytest.raises(RuleViolation, match="Luhn"):
        normalize_siren("123456789")
    with pytest.raises(RuleViolation, match="INSEE assigns none of zeros"):
        normalize_siren("000 000 000")


@pytest.mark.parametrize(
    ("has_siret", "has_rep", "mandate", "expected"),
    [
        (False, True, None, DossierStatus.MISSING_INFORMATION),
        (True, False, None, DossierStatus.MISSING_INFORMATION),
        (True, True, None, DossierStatus.READY_FOR_MANDATE),
        (True, True, MandateStatus.DRAFT, DossierStatus.READY_FOR_MANDATE),
        (True, True, MandateStatus.FAILED, DossierStatus.READY_FOR_MANDATE),
        (True, True, MandateStatus.DELETED, DossierStatus.READY_FOR_MANDATE),
        (True, True, MandateStatus.SENDING, DossierStatus.MANDATE_PENDING),
        (True, True, MandateStatus.PENDING, DossierStatus.MANDATE_PENDING),
        (True, True, MandateStatus.SIGNED, DossierStatus.READY_FOR_DESIGNATION),
        (True, True, MandateStatus.REFUSED, DossierStatus.MANDATE_REFUSED),
        (True, True, MandateStatus.EXPIRED, DossierStatus.MANDATE_EXPIRED),
        (False, True, MandateStatus.REFUSED, DossierStatus.MISSING_INFORMATION),
    ],
)
def test_dossier_status(has_siret, has_rep, mandate, expected):
    assert (
        dossier_status(has_siret=has_siret, has_legal_representative=has_rep, mandate_status=mandate)
        == expected
    )


def test_a_dossier_not_ready_for_a_mandate_says_what_to_do():
    from domain.status import why_no_mandate

    def why(status, siret=True, rep=True):
        return why_no_mandate(status, has_siret=siret, has_legal_representative=rep)

    assert why(DossierStatus.MISSING_INFORMATION, siret=False) == (
        "the dossier is missing_information: set its siret first"
    )
    assert why(DossierStatus.MISSING_INFORMATION, siret=False, rep=False).endswith(
        "set its siret and legal_representative first"
    )
    assert why(DossierStatus.MANDATE_REFUSED) == (
        "the dossier is mandate_refused: delete its mandate first, then generate a new one"
    )
    assert "delete its mandate first" in why(DossierStatus.MANDATE_EXPIRED)
    assert why(DossierStatus.MANDATE_PENDING).startswith(
        "the dossier is mandate_pending: its mandate is sent (or being sent)"
    )
    # A bulk send's: which one, so that the firm can follow it (`bulk watch <id>`).
    batch = uuid.UUID("6b1f0a52-4d0b-4c3e-9a55-0a2f6c1d9e77")
    assert f"(or being sent, by bulk send {batch})" in why_no_mandate(
        DossierStatus.MANDATE_PENDING, has_siret=True, has_legal_representative=True, bulk_send_id=batch
    )
    assert why(DossierStatus.READY_FOR_DESIGNATION).endswith("its mandate is signed")


def test_a_dossier_with_a_mandate_says_why_it_gets_no_other():
    from domain.status import why_not_another

    assert why_not_another(MandateStatus.FAILED, at_yousign=True).startswith(
        "the dossier's mandate failed once YouSign had its request"
    )
    assert why_not_another(MandateStatus.FAILED, at_yousign=False) == (
        "the dossier already has a failed mandate: delete it before generating a new one"
    )
    assert "already has a draft mandate" in why_not_another(MandateStatus.DRAFT, at_yousign=False)


def test_only_a_dossier_whose_mandate_is_settled_for_good_is_archived():
    from domain.status import why_not_archivable

    archivable = {s for s in [None, *MandateStatus] if why_not_archivable(s) is None}
    assert archivable == {None, MandateStatus.SIGNED, MandateStatus.DELETED}
    assert "awaits the client's signature" in why_not_archivable(MandateStatus.PENDING)
    assert "awaits the client's signature" in why_not_archivable(MandateStatus.SENDING)
    for waiting_for_the_firm in (MandateStatus.DRAFT, MandateStatus.REFUSED, MandateStatus.EXPIRED):
        assert why_not_archivable(waiting_for_the_firm).endswith("delete the mandate first")


def test_status_labels_are_french():
    assert {s.value: s.label for s in DossierStatus} == {
        "missing_information": "Informations manquantes",
        "ready_for_mandate": "Prêt pour mandat",
        "mandate_pending": "Mandat en attente",
        "ready_for_designation": "Prêt pour désignation",
        "mandate_refused": "Mandat refusé",
        "mandate_expired": "Mandat expiré",
    }


def paris(*args) -> datetime:
    from domain.calendar import PARIS

    return datetime(*args, tzinfo=PARIS)


@pytest.mark.parametrize(
    ("sent", "expires"),
    [
        (paris(2027, 1, 31, 10, 0), paris(2027, 2, 28, 10, 0)),
        (paris(2028, 1, 31, 10, 0), paris(2028, 2, 29, 10, 0)),
        (paris(2027, 3, 15, 9, 30), paris(2027, 4, 15, 9, 30)),  # across the DST change: same wall time
        (paris(2027, 12, 31, 23, 59), paris(2028, 1, 31, 23, 59)),
        (paris(2027, 5, 31, 12, 0), paris(2027, 6, 30, 12, 0)),
    ],
)
def test_expiry_is_one_calendar_month_in_paris(sent, expires):
    assert mandate_expires_at(sent.astimezone(UTC)) == expires.astimezone(UTC)


def test_expiry_on_paris_clock_edges():
    # Sent at a wall time the expiry's day skips (clocks forward at 02:00 on 28 March 2027): it ends
    # at the same instant of the hour after, 03:30, never before the month is out.
    assert mandate_expires_at(paris(2027, 2, 28, 2, 30).astimezone(UTC)) == datetime(
        2027, 3, 28, 1, 30, tzinfo=UTC
    )
    # A wall time the expiry's day has twice (clocks back at 03:00 on 31 October 2027): the first.
    sent = paris(2027, 8, 31, 2, 30).astimezone(UTC)
    assert mandate_expires_at(sent, "P2M") == datetime(2027, 10, 31, 0, 30, tzinfo=UTC)
    # Already the next day in Paris: 31 January 23:30 UTC is 1 February, which ends on 1 March.
    assert mandate_expires_at(datetime(2027, 1, 31, 23, 30, tzinfo=UTC)) == paris(
        2027, 3, 1, 0, 30
    ).astimezone(UTC)
    # 29 February plus a year of months: 28 February.
    assert add_calendar_months(date(2028, 2, 29), 12) == date(2029, 2, 28)


def test_expiry_uses_the_configured_duration():
    sent = datetime(2027, 1, 10, 12, 0, tzinfo=UTC)
    assert mandate_expires_at(sent, "PT30S") == datetime(2027, 1, 10, 12, 0, 30, tzinfo=UTC)
    assert mandate_expires_at(sent, "P1M2D") == datetime(2027, 2, 12, 12, 0, tzinfo=UTC)


def test_expiry_needs_an_aware_instant():
    with pytest.raises(ValueError, match="timezone"):
        mandate_expires_at(datetime(2027, 1, 1))


def test_add_calendar_months_clamps():
    assert add_calendar_months(date(2027, 1, 31), 1) == date(2027, 2, 28)
    assert add_calendar_months(date(2027, 11, 30), 3) == date(2028, 2, 29)


@pytest.mark.parametrize(
    "bad",
    # The last ones are too long: a hundred years at most, not an OverflowError at start-up.
    ["1M", "P", "PT", "P-1D", "P0D", "month", "P101Y", "P9999999999D", "PT99999999999999999999H"],
)
def test_bad_durations_are_refused(bad):
    with pytest.raises(RuleViolation, match="MANDATE_VALIDITY"):
        parse_iso_duration(bad, "MANDATE_VALIDITY")


def test_reminder_window_is_the_paris_calendar_day():
    last = paris(2027, 3, 10, 23, 30)  # 22:30 UTC
    next_allowed = next_reminder_allowed_at(last.astimezone(UTC))
    assert next_allowed == paris(2027, 3, 11, 0, 0).astimezone(UTC)
    assert not reminder_allowed(paris(2027, 3, 10, 23, 59).astimezone(UTC), last)
    assert reminder_allowed(paris(2027, 3, 11, 0, 0).astimezone(UTC), last)
    assert reminder_allowed(datetime(2027, 3, 10, tzinfo=UTC), None)
    assert next_reminder_allowed_at(None) is None


def test_reminder_window_across_dst_midnight():
    # Night of 27-28 March 2027 (clocks go forward): next day still starts at Paris midnight.
    last = paris(2027, 3, 27, 8, 0)
    assert next_reminder_allowed_at(last) == paris(2027, 3, 28, 0, 0).astimezone(UTC)


def test_mandate_number_follows_the_dgfip_model():
    # The DGFiP's own example (584796231) fails Luhn, so a real SIREN stands in for it.
    assert mandate_number("732829320", "552081317", date(2025, 7, 7), 1) == (
        "732829320_552081317_20250707_01"
    )
    assert mandate_number("732829320", "0042", date(2025, 7, 7), 100).endswith("_20250707_100")
    assert platform_identifier(None, "0042") == "0042"
    assert platform_identifier("732829320", "0042") == "732829320"
    # The mandate's "drawn up on" date is read back from its number, so the two always agree.
    assert issued_on_of("732829320_0042_20251231_07") == date(2025, 12, 31)


@pytest.mark.parametrize(
    ("siren", "pa", "counter", "field"),
    [
        ("123456789", "0042", 1, "siren"),
        ("732829320", "0042", 0, "counter"),
    ],
)
def test_mandate_number_refuses_bad_parts(siren, pa, counter, field):
    with pytest.raises(RuleViolation) as raised:
        mandate_number(siren, pa, date(2027, 1, 1), counter)
    assert raised.value.field == field


def test_a_mandate_numbered_for_another_platform_cannot_go_out():
    by_siren, by_matricule = "732829320_552081317_20270110_01", "732829320_0042_20270110_01"
    assert numbered_for_another_platform(by_siren, "552081317", "0042") is None  # the SIREN wins
    assert numbered_for_another_platform(by_matricule, None, "0042") is None
    # The firm's PA gained a SIREN, or changed: the number and the text would name different PAs.
    assert "numbered for 0042" in numbered_for_another_platform(by_matricule, "552081317", "0042")
    assert "delete it and generate" in numbered_for_another_platform(by_siren, "356000000", None)


def test_platform_identifier_needs_siren_or_matricule():
    with pytest.raises(RuleViolation, match="SIREN or a matricule"):
        platform_identifier(None, None)
    with pytest.raises(RuleViolation, match="4 digits"):
        platform_identifier(None, "12")


def _errors(exc: ValidationError) -> dict[str, str]:
    return {".".join(map(str, e["loc"])): e["msg"] for e in exc.errors()}


def test_legal_representative_validation_names_fields():
    with pytest.raises(ValidationError) as raised:
        LegalRepresentative(first_name="  ", last_name="Dupont<script>", email="jean@localhost")
    errors = _errors(raised.value)
    assert "empty" in errors["first_name"]
    assert "characters" in errors["last_name"]
    assert "email" in errors


@pytest.mark.parametrize("length", [100, 101, 300])
def test_an_email_is_at_most_100_characters_said_in_characters(length):
    email = "a" * (length - len("@example.com")) + "@example.com"
    if length <= 100:
        assert LegalRepresentative(first_name="A", last_name="B", email=email).email == email
        return
    with pytest.raises(ValidationError) as raised:
        LegalRepresentative(first_name="A", last_name="B", email=email)
    assert _errors(raised.value) == {"email": "String should have at most 100 characters"}


def test_legal_representative_normalises_names():
    rep = LegalRepresentative(first_name=" Anne-Marie ", last_name="D\u2019Arc  Lévêque", email="a@b.fr")
    assert (rep.first_name, rep.last_name) == ("Anne-Marie", "D'Arc Lévêque")


def test_platform_needs_an_identifier():
    with pytest.raises(ValidationError, match="siren or a matricule"):
        Platform(name="PA")
    with pytest.raises(ValidationError) as raised:
        Platform(name="PA", siren="123456789")
    assert "siren" in _errors(raised.value)
    assert Platform(name="PA", matricule="0042").identifier() == "0042"


def test_yousign_events_and_statuses_map_to_mandate_outcomes():
    from domain.yousign_outcomes import outcome_of_event, outcome_of_status

    assert outcome_of_event("signer.done") == MandateStatus.SIGNED
    assert outcome_of_event("signature_request.declined") == MandateStatus.REFUSED
    assert outcome_of_event("signature_request.expired") == MandateStatus.EXPIRED
    assert outcome_of_event("signer.error") == MandateStatus.FAILED  # YouSign cancelled it itself
    assert outcome_of_event("signature_request.activated") is None
    assert outcome_of_status("done") == MandateStatus.SIGNED
    assert outcome_of_status("ongoing") is None


def test_only_a_signature_or_decline_after_the_validity_counts_as_too_late():
    from domain.yousign_outcomes import settled_after_validity

    end = datetime(2027, 1, 5, 10, 0, tzinfo=UTC)
    late = end + timedelta(seconds=61)
    assert settled_after_validity(MandateStatus.SIGNED, late, end)
    assert settled_after_validity(MandateStatus.REFUSED, late, end)
    # YouSign's clock a minute ahead of Temporal's at most: in time.
    assert not settled_after_validity(MandateStatus.SIGNED, end + timedelta(seconds=60), end)
    assert not settled_after_validity(MandateStatus.SIGNED, end - timedelta(seconds=1), end)
    assert not settled_after_validity(MandateStatus.SIGNED, None, end)  # no time given: in time
    assert not settled_after_validity(MandateStatus.FAILED, late, end)  # YouSign cancelled it
    assert not settled_after_validity(None, late, end)  # an event that settles nothing


def test_kyc_codes_are_explained_in_words():
    from domain.yousign_outcomes import explain_kyc_codes

    assert explain_kyc_codes("verified", []) is None
    text = explain_kyc_codes("inconclusive", ["IDDV_1104", "IDDV_9999"])
    assert "320 x 256" in text and "IDDV_9999" in text and text.startswith("La vérification")
    assert explain_kyc_codes("failed", []) == "Le document d'identité n'a pas été validé."


def test_pacing_stays_under_both_limits():
    from domain.pacing import activity_rate_limit, sustainable_request_rate

    assert sustainable_request_rate(60, 1200) == pytest.approx(1 / 3)  # the hour binds in production
    assert sustainable_request_rate(30, 3600) == pytest.approx(0.5)  # the minute binds
    # 300 activities of 4 calls an hour: one kept for the limiter's burst, and just under the rest.
    assert activity_rate_limit(60, 1200, 4) == pytest.approx(0.99 * 299 / 3600)
    with pytest.raises(ValueError):
        activity_rate_limit(60, 0, 4)
    with pytest.raises(ValueError, match="two activities of 4 calls"):
        activity_rate_limit(7, 1200, 4)


def test_the_eta_counts_the_sends_of_firms_taking_turns():
    from domain.pacing import sends_until_done

    def turns(backlogs: list[int]) -> int:
        """Sends until the first firm's last one, each firm with a backlog sending one in turn
        (the first firm's turn coming last: the most that can go before its end)."""
        left, sent = list(backlogs), 0
        while left[0]:
            for firm in [*range(1, len(left)), 0]:
                if left[firm]:
                    left[firm] -= 1
                    sent += 1
                    if firm == 0 and not left[0]:
                        return sent
        return sent

    for backlogs in ([3], [3, 5], [5, 3], [1, 10_000, 2], [40, 1, 39, 40, 41], [0, 7]):
        assert sends_until_done(backlogs[0], backlogs[1:]) == turns(backlogs), backlogs
    # A firm's batch of 3 behind another firm's 10,000: about 6 sends, not 10,003.
    assert sends_until_done(3, [10_000]) == 6


def test_a_batch_is_stalled_only_when_nothing_moved_for_longer_than_pacing_explains():
    from domain.pacing import STALL_AFTER, activity_rate_limit, stalled_since

    moved = datetime(2027, 1, 11, 13, 0, tzinfo=UTC)
    # Production limits: one send every 12 s; five minutes without any is a stall.
    assert stalled_since(moved, moved + STALL_AFTER, 60, 1200, 4) is None
    assert stalled_since(moved, moved + STALL_AFTER + timedelta(seconds=1), 60, 1200, 4) == moved
    # A cap so low that five turns outlast the five minutes: those turns are normal pacing.
    turn = timedelta(seconds=1 / activity_rate_limit(10, 40, 4))  # 9 activities an hour
    assert 5 * turn > STALL_AFTER
    assert stalled_since(moved, moved + 5 * turn - timedelta(seconds=1), 10, 40, 4) is None
    assert stalled_since(moved, moved + 5 * turn + timedelta(seconds=1), 10, 40, 4) == moved


def simulate_queue(activities: int, rate_per_second: float, calls_per_activity: int) -> list[float]:
    """Call times on a simulated clock, through a token bucket like the queue's limiter: it holds two
    and refills at `rate`; work is always waiting except for one pause (which refills the bucket) a
    third of the way; each activity makes all its calls when it starts."""
    interval, capacity = 1 / rate_per_second, 2.0
    tokens, now, starts = capacity, 0.0, []
    for k in range(activities):
        if k == activities // 3:  # a pause: the bucket fills up again
            now += 10 * interval
            tokens = capacity
        if tokens < 1:
            now += (1 - tokens) * interval
            tokens = 1.0
        tokens -= 1
        starts.append(now)
        # Time passes only while waiting: the next start refills from here.
    return [t for t in starts for _ in range(calls_per_activity)]


def busiest_window(times: list[float], window: float) -> int:
    """Most calls within any `window` seconds, both ends included (however YouSign's windows line
    up, and whichever side of a boundary a call exactly `window` later lands on)."""
    busiest, first = 0, 0
    for last, t in enumerate(times):
        while t - times[first] > window:
            first += 1
        busiest = max(busiest, last - first + 1)
    return busiest


@pytest.mark.parametrize(("per_minute", "per_hour"), [(60, 1200), (30, 200), (30, 3600), (600, 3600)])
def test_pacing_on_a_simulated_clock_stays_under_both_limits_and_uses_them(per_minute, per_hour):
    from domain.pacing import activity_rate_limit, remaining_time

    calls = simulate_queue(1000, activity_rate_limit(per_minute, per_hour, 4), 4)  # a 1,000-dossier batch
    assert busiest_window(calls, 60) <= per_minute
    assert busiest_window(calls, 3600) <= per_hour
    # Used fully: the binding window is filled to 0.99, or to its last whole activity (7 activities
    # of 4 calls are 28 of 30 a minute).
    used = max(busiest_window(calls, 60) / per_minute, busiest_window(calls, 3600) / per_hour)
    assert used >= 0.93
    # The ETA is when the queue hands out the last send: here, the last simulated start.
    assert remaining_time(1000, per_minute, per_hour, 4) == pytest.approx(calls[-1], rel=0.01)


def test_printable_names_are_what_one_of_the_mandates_faces_draws():
    from documents.fonts import HELVETICA, ROBOTO, face_for, to_winansi
    from domain.models import LegalRepresentative
    from domain.printable import check_printable, unprintable_characters

    assert check_printable("L’Atelier du Cœur – Müller & Fils") == "L’Atelier du Cœur – Müller & Fils"
    assert check_printable("Łukasz Nguyễn, Ștefan Şahin, Дмитрий") == "Łukasz Nguyễn, Ștefan Şahin, Дмитрий"
    assert unprintable_characters("山田 Łukasz 🙂\x81") == "山田🙂\x81"  # no CJK, emoji or C1 controls
    # Nothing invisible (zero-width space, soft hyphen), private-use or left uncombined.
    assert unprintable_characters("Du\u200bpont\u00adx\ue001a\u0301") == "\u200b\u00ad\ue001\u0301"
    # Composed first: a decomposed "ễ" (e + two combining marks) is the letter itself.
    assert check_printable("Nguye\u0302\u0303n") == "Nguyễn"
    assert (
        LegalRepresentative(
            first_name="Jose\u0301", last_name="Nguye\u0302\u0303n", email="n@example.com"
        ).last_name
        == "Nguyễn"
    )
    with pytest.raises(ValidationError, match="cannot print: '山'"):
        LegalRepresentative(first_name="山", last_name="Nowak", email="l@example.com")
    # Helvetica (a core font, nothing embedded) as long as it prints everything.
    assert face_for(["Šimon Žák, L’HAŸ-LES-ROSES\u202f", "10 €"]) is HELVETICA
    assert face_for(["ACME", "Łukasz"]) is ROBOTO
    # Each character as the Windows-1252 byte Helvetica draws it with; thin spaces as spaces.
    assert HELVETICA.prepare("Cœur\u202f€ ’") == to_winansi("Cœur € ’") == "C\x9cur \x80 \x92"
    assert ROBOTO.prepare("Łukasz\u2009N.") == "Łukasz N."


def test_the_emulators_secrets_are_refused_against_yousign_itself():
    from config.settings import Settings

    real = {"yousign_base_url": "https://api.yousign.app/v3", "yousign_api_key": "live-key"}
    with pytest.raises(ValidationError, match="YOUSIGN_WEBHOOK_SECRET: set the value YouSign gave you"):
        Settings(**real, yousign_webhook_secret="dev-emulator-webhook-secret")
    with pytest.raises(ValidationError, match="YOUSIGN_API_KEY"):
        Settings(**real | {"yousign_api_key": "dev-emulator-api-key"}, yousign_webhook_secret="whsec")
    assert Settings(**real, yousign_webhook_secret="whsec-from-yousign").yousign_api_key.get_secret_value()
    # Left out, every webhook would be refused; over http, the key would travel in clear.
    with pytest.raises(ValidationError, match="YOUSIGN_WEBHOOK_SECRET: set the value YouSign gave you"):
        Settings(**real)
    with pytest.raises(ValidationError, match="YOUSIGN_API_KEY: set the value YouSign gave you"):
        Settings(yousign_base_url="https://api-sandbox.yousign.app/v3", yousign_webhook_secret="whsec")
    with pytest.raises(ValidationError, match="over https only"):
        Settings(**real | {"yousign_base_url": "http://api.yousign.app/v3"}, yousign_webhook_secret="whsec")
    # YouSign through a proxy: a real key beside the emulator's published webhook secret is the
    # compose default left in place; anyone could sign webhooks with it.
    with pytest.raises(ValidationError, match="YOUSIGN_WEBHOOK_SECRET: set your YouSign webhook's secret"):
        Settings(
            yousign_base_url="http://egress-proxy:3128/v3",
            yousign_api_key="live-key",
            yousign_webhook_secret="dev-emulator-webhook-secret",
        )
    # The emulator (make run, docker compose --profile dev) takes them.
    Settings(
        yousign_base_url="http://yousign-emulator:8090/v3",
        yousign_webhook_secret="dev-emulator-webhook-secret",
    )


def test_a_reconciliation_interval_in_months_or_too_long_is_an_invalid_setting():
    from config.settings import Settings, invalid_settings

    with pytest.raises(ValidationError) as refused:
        Settings(reconciliation_interval="P1M")
    assert invalid_settings(refused.value) == [
        "RECONCILIATION_INTERVAL is invalid: must not use months or years (PT1H, P1D...)"
    ]
    assert Settings(reconciliation_interval="P1D").reconciliation_every.days == 1
    with pytest.raises(ValidationError) as refused:
        Settings(reconciliation_interval="P99999999999D")
    assert invalid_settings(refused.value) == [
        "RECONCILIATION_INTERVAL is invalid: 'P99999999999D' is too long: at most a hundred years"
    ]


@pytest.mark.parametrize("validity", ["P1Y", "P12M", "P11M30D", "P400D", "P101Y", "P9999999999D"])
def test_a_validity_yousign_cannot_hold_open_is_an_invalid_setting(validity):
    from config.settings import Settings, invalid_settings

    with pytest.raises(ValidationError) as refused:
        Settings(mandate_validity=validity)
    assert invalid_settings(refused.value) == [
        f"MANDATE_VALIDITY is invalid: '{validity}' is too long: YouSign keeps a request open a year at"
        " most, and a mandate must end two days before that whatever day it is sent (P11M is within)"
    ]


@pytest.mark.parametrize(
    ("keys", "key_id", "line"),
    [
        ("k1:not-base64!", "k1", "PAYLOAD_ENCRYPTION_KEYS is invalid: key 'k1' is not base64"),
        ("k1:" + "QUFB" * 3, "k1", "PAYLOAD_ENCRYPTION_KEYS is invalid: key 'k1' must be 16, 24 or 32 bytes"),
        # A key id left at its default: one line naming it, not a traceback when the codec is made.
        (
            "k1:" + "QUFB" * 8,
            "default",
            "PAYLOAD_ENCRYPTION_KEY_ID is invalid: 'default' is not among the keys",
        ),
    ],
)
def test_payload_keys_that_cannot_seal_are_invalid_settings(keys, key_id, line):
    from config.settings import Settings, invalid_settings

    with pytest.raises(ValidationError) as refused:
        Settings(payload_encryption_keys=keys, payload_encryption_key_id=key_id)
    assert invalid_settings(refused.value)[0].startswith(line)


@pytest.mark.parametrize("validity", ["P11M", "P11M5D", "P1M", "P360D", "PT5M"])
def test_a_validity_within_yousigns_year_is_taken(validity):
    from config.settings import Settings
    from domain.calendar import mandate_expires_at, paris_day

    assert Settings(mandate_validity=validity).mandate_validity == validity
    # Whatever the day it is sent, YouSign's date (the day after ours) is within its year.
    for sent in (datetime(2027, 1, 31, 23, 30, tzinfo=UTC), datetime(2028, 3, 31, 22, 0, tzinfo=UTC)):
        yousign_date = paris_day(mandate_expires_at(sent, validity)) + timedelta(days=1)
        assert yousign_date - paris_day(sent) <= timedelta(days=365)


@pytest.mark.parametrize("variable", ["database_url", "smtp_url"])
def test_a_url_whose_password_breaks_it_is_refused_without_showing_it(variable):
    from config.settings import Settings, invalid_settings

    for password in ("ab/cd", "S3cr#t", "wh?at", "s3cr@t"):
        with pytest.raises(ValidationError) as refused:
            Settings(**{variable: f"postgresql://mandates:{password}@db.example:5432/m"})
        [line] = invalid_settings(refused.value)
        assert line.startswith(f"{variable.upper()} is invalid") and "percent-encode" in line
        assert password[:2] not in line
    encoded = Settings(**{variable: "postgresql://mandates:ab%2Fcd@db.example:5432/m"})
    assert getattr(encoded, variable).get_secret_value().endswith("@db.example:5432/m")
    assert "ab%2Fcd" not in repr(encoded)
    Settings(**{variable: "postgresql://u:p@primary:5432,standby:5432/m"})  # several hosts: fine


def test_an_empty_setting_is_its_default_unless_empty_means_off(monkeypatch):
    from config.settings import Settings

    # docker-compose passes `BULK_PAGE_SIZE=` of a .env on as an empty value.
    for variable in ("BULK_PAGE_SIZE", "RECONCILIATION_INTERVAL", "MAIL_FROM", "TEMPORAL_TLS"):
        monkeypatch.setenv(variable, "")
    monkeypatch.setenv("WORKER_METRICS_ADDRESS", "")
    settings = Settings()
    assert (settings.bulk_page_size, settings.reconciliation_interval) == (100, "PT1H")
    assert (settings.mail_from, settings.temporal_tls) == ("mandats@cabinet.example", False)
    assert settings.worker_metrics_address == ""  # no metrics endpoint


def logged_by(script: str) -> tuple[str, list[dict]]:
    """What `script` writes to stderr, run in a process whose logging is configured as ours, and its
    JSON lines."""
    setup = "import logging; from config.logging import configure_logging; configure_logging('INFO')\n"
    done = subprocess.run(
        [sys.executable, "-c", setup + script], capture_output=True, text=True, check=True, cwd=ROOT
    )
    return done.stderr, [json.loads(line) for line in done.stderr.splitlines()]


def test_the_libraries_logs_are_json_lines_too():
    script = (
        "log = logging.getLogger('temporalio.worker');"
        "log.info('Completing activity as failed (%s)', 'x')\n"
        "try:\n  1 / 0\nexcept ZeroDivisionError:\n  log.exception('failed')"
    )
    _, (first, second) = logged_by(script)
    assert first["event"] == "Completing activity as failed (x)" and first["level"] == "info"
    assert first["logger"] == "temporalio.worker" and first["timestamp"]
    assert second["level"] == "error" and "ZeroDivisionError" in second["exception"]


def test_the_sdks_failure_logs_keep_the_traceback_but_not_the_message():
    """What YouSign or PostgreSQL said of a client reaches the log only through the SDK's failure
    warnings: their messages are withheld, their types and frames kept."""
    script = (
        "from temporalio.exceptions import ApplicationError\n"
        "def send():\n"
        "  try:\n    raise ValueError('Key (siret)=(73282932000074) already exists')\n"
        "  except ValueError as error:\n"
        "    raise ApplicationError('YouSign 400: jean.dupont@example.fr',"
        " type='YouSignFinalError') from error\n"
        "try:\n  send()\n"
        "except ApplicationError:\n"
        "  logging.getLogger('temporalio.activity').warning('Completing activity as failed', exc_info=True)"
    )
    stderr, (sdk,) = logged_by(script)
    assert sdk["event"] == "Completing activity as failed" and sdk["level"] == "warning"
    assert "jean.dupont" not in stderr and "73282932000074" not in stderr
    assert "ValueError: (message withheld)" in sdk["exception"]
    assert "ApplicationError (YouSignFinalError): (message withheld)" in sdk["exception"]
    assert "in send" in sdk["exception"]  # where it happened stays


def test_access_logs_leave_query_strings_out():
    import logging

    from config.logging import WithoutQueryStrings

    record = logging.LogRecord(
        "uvicorn.access",
        logging.INFO,
        "",
        0,
        '%s - "%s %s HTTP/%s" %d',
        ("127.0.0.1:5000", "GET", "/v1/dossiers?search=Boulangerie%20Dupont", "1.1", 200),
        None,
    )
    assert WithoutQueryStrings().filter(record)
    assert record.getMessage() == '127.0.0.1:5000 - "GET /v1/dossiers HTTP/1.1" 200'


def test_times_are_told_on_the_paris_wall_clock():
    from domain.calendar import paris_wall_time

    assert paris_wall_time(datetime(2026, 12, 5, 23, 0, tzinfo=UTC)) == "2026-12-06 00:00 Paris time"
    assert paris_wall_time(datetime(2027, 7, 1, 22, 0, tzinfo=UTC)) == "2027-07-02 00:00 Paris time"


def test_a_signers_names_follow_yousigns_human_name_pattern():
    from domain.signer_names import ALLOWED, YOUSIGN_ACCENTED_LETTERS
    from tests.support.yousign_openapi import default_spec_path
    from yousign_emulator.checks import HUMAN_NAME_PATTERN

    spec = default_spec_path().read_text(encoding="utf-8")
    folded = re.search(r"\n    HumanName:\n      pattern: (.*?)\n      type:", spec, re.S).group(1)
    pattern = " ".join(line.strip() for line in folded.splitlines())  # YAML folds lines into spaces
    assert HUMAN_NAME_PATTERN == pattern  # the emulator refuses what YouSign refuses
    listed = re.fullmatch(r"\^\(\?!\\s\)\[0-9A-Za-z(.*)`'\(\) -\]\+\(\?<!\\s\)\$", pattern).group(1)
    assert YOUSIGN_ACCENTED_LETTERS == listed
    every = "".join(chr(c) for c in range(0x20, 0x3000))
    assert {c for c in every if re.fullmatch(pattern, f"a{c}a")} == {c for c in every if c in ALLOWED}


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("Nguyễn", "refuses in a signer's name: 'ễ'; it could be written 'Nguyen'"),
        ("Ελένη", "refuses in a signer's name: 'Ελένη'"),
        ("Þór", "refuses in a signer's name: 'Þ'"),
    ],
)
def test_a_client_representative_is_named_as_yousign_accepts(name, message):
    from domain.models import ClientRepresentative

    with pytest.raises(ValidationError) as raised:
        ClientRepresentative(first_name="Anne", last_name=name, email="a@example.com")
    assert message in _errors(raised.value)["last_name"]
    # Printed only, the birth name may have them; and the firm's representative, not a signer, too.
    kept = ClientRepresentative(first_name="Ștefan", last_name="Łoś", birth_name=name, email="a@example.com")
    assert kept.birth_name == name
    assert LegalRepresentative(first_name="Anne", last_name=name, email="a@example.com").last_name == name


def test_what_a_firm_is_told_while_its_representative_is_not_verified():
    from domain.firm_verification import why_not_verified

    assert why_not_verified("verified") is None
    assert why_not_verified("pending").endswith(
        "wait until GET /v1/firm says verified (YouSign answers within minutes)"
    )
    for state in ("not_submitted", "failed", "inconclusive"):
        assert why_not_verified(state) == (
            f"the firm's legal representative is not verified ({state}): submit it with PUT"
            " /v1/firm/legal-representative"
        )
