-- Firms, their API keys, the firm's representative (KYC), dossiers, mandates and their event log.

CREATE TABLE firms (
    id              uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    name            text NOT NULL CHECK (length(name) > 0),
    siren           char(9) NOT NULL CHECK (siren ~ '^[0-9]{9}$'),
    address         text,
    platform_name   text,
    platform_siren  char(9) CHECK (platform_siren ~ '^[0-9]{9}$'),
    platform_matricule char(4) CHECK (platform_matricule ~ '^[0-9]{4}$'),
    created_at      timestamptz NOT NULL DEFAULT now(),
    CHECK (platform_name IS NULL OR platform_siren IS NOT NULL OR platform_matricule IS NOT NULL)
);

-- Only a hash of each key is kept: a leaked table does not leak keys.
CREATE TABLE api_keys (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    firm_id     uuid NOT NULL REFERENCES firms (id) ON DELETE CASCADE,
    key_hash    bytea NOT NULL UNIQUE,
    key_prefix  text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    revoked_at  timestamptz
);
CREATE INDEX api_keys_firm ON api_keys (firm_id);

-- Each submission of the firm's legal representative and identity document; the newest one counts.
CREATE TABLE kyc_submissions (
    id              uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    firm_id         uuid NOT NULL REFERENCES firms (id) ON DELETE CASCADE,
    first_name      text NOT NULL,
    last_name       text NOT NULL,
    birth_name      text,
    email           text NOT NULL,
    document_type   text NOT NULL
        CHECK (document_type IN ('identity_card', 'passport', 'residence_permit', 'driving_licence')),
    status          text NOT NULL DEFAULT 'pending'
        CHECK (status IN ('pending', 'verified', 'failed', 'inconclusive', 'superseded')),
    reason          text,
    status_codes    text[] NOT NULL DEFAULT '{}',
    verification_id text UNIQUE,
    created_at      timestamptz NOT NULL DEFAULT now(),
    completed_at    timestamptz
);
CREATE INDEX kyc_submissions_firm ON kyc_submissions (firm_id, created_at DESC);

-- Identity document files, kept only until YouSign has them (then deleted: data minimisation).
CREATE TABLE kyc_files (
    submission_id   uuid NOT NULL REFERENCES kyc_submissions (id) ON DELETE CASCADE,
    side            text NOT NULL CHECK (side IN ('front', 'back')),
    content_type    text NOT NULL,
    content         bytea NOT NULL,
    PRIMARY KEY (submission_id, side)
);

CREATE TABLE dossiers (
    id              uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    firm_id         uuid NOT NULL REFERENCES firms (id) ON DELETE CASCADE,
    name            text NOT NULL CHECK (length(name) > 0),
    siret           char(14) CHECK (siret ~ '^[0-9]{14}$'),
    siren           char(9) GENERATED ALWAYS AS (substr(siret, 1, 9)) STORED,
    rep_first_name  text,
    rep_last_name   text,
    rep_birth_name  text,
    rep_email       text,
    external_ref    text,
    einvoicing_status text NOT NULL DEFAULT 'missing_information' CHECK (einvoicing_status IN (
        'missing_information', 'ready_for_mandate', 'mandate_pending',
        'ready_for_designation', 'mandate_refused', 'mandate_expired')),
    mandate_count   integer NOT NULL DEFAULT 0,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    -- The representative is all there or not at all.
    CHECK ((rep_first_name IS NULL) = (rep_last_name IS NULL) AND (rep_first_name IS NULL) = (rep_email IS NULL))
);
CREATE INDEX dossiers_firm_list ON dossiers (firm_id, created_at, id);
CREATE INDEX dossiers_firm_status_list ON dossiers (firm_id, einvoicing_status, created_at, id);
CREATE INDEX dossiers_firm_siret ON dossiers (firm_id, siret);

CREATE TABLE mandates (
    id                  uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    dossier_id          uuid NOT NULL REFERENCES dossiers (id) ON DELETE CASCADE,
    firm_id             uuid NOT NULL REFERENCES firms (id) ON DELETE CASCADE,
    seq                 integer NOT NULL CHECK (seq > 0),
    number              text NOT NULL,
    workflow_id         text NOT NULL UNIQUE,
    status              text NOT NULL DEFAULT 'draft' CHECK (status IN (
        'draft', 'sending', 'pending', 'signed', 'refused', 'expired', 'failed', 'deleted')),
    -- One signature request per mandate, and never one request shared by two mandates.
    signature_request_id text UNIQUE,
    signer_id           text,
    failure_reason      text,
    bulk_send_id        uuid,
    created_at          timestamptz NOT NULL DEFAULT now(),
    sent_at             timestamptz,
    expires_at          timestamptz,
    signed_at           timestamptz,
    refused_at          timestamptz,
    expired_at          timestamptz,
    deleted_at          timestamptz,
    updated_at          timestamptz NOT NULL DEFAULT now(),
    UNIQUE (dossier_id, seq),
    CHECK ((status = 'deleted') = (deleted_at IS NOT NULL))
);
-- At most one mandate per dossier that is not deleted.
CREATE UNIQUE INDEX mandates_one_live_per_dossier ON mandates (dossier_id) WHERE status <> 'deleted';
CREATE INDEX mandates_firm_status ON mandates (firm_id, status);

CREATE TABLE mandate_documents (
    mandate_id  uuid NOT NULL REFERENCES mandates (id) ON DELETE CASCADE,
    kind        text NOT NULL CHECK (kind IN ('generated', 'signed', 'audit_trail')),
    content     bytea NOT NULL,
    sha256      text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (mandate_id, kind)
);

CREATE TABLE mandate_reminders (
    id          bigserial PRIMARY KEY,
    mandate_id  uuid NOT NULL REFERENCES mandates (id) ON DELETE CASCADE,
    sent_at     timestamptz NOT NULL
);
CREATE UNIQUE INDEX mandate_reminders_mandate ON mandate_reminders (mandate_id, sent_at);

-- Append-only history of every status change, with its time and cause.
CREATE TABLE mandate_events (
    id          bigserial PRIMARY KEY,
    mandate_id  uuid NOT NULL REFERENCES mandates (id) ON DELETE CASCADE,
    occurred_at timestamptz NOT NULL,
    from_status text,
    to_status   text NOT NULL,
    cause       text NOT NULL,
    detail      jsonb NOT NULL DEFAULT '{}'
);
CREATE INDEX mandate_events_mandate ON mandate_events (mandate_id, id);

CREATE FUNCTION refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% is append-only', TG_TABLE_NAME USING ERRCODE = 'restrict_violation';
END $$;
CREATE TRIGGER mandate_events_append_only BEFORE UPDATE OR DELETE ON mandate_events
    FOR EACH ROW EXECUTE FUNCTION refuse_change();

-- YouSign webhook event ids already handled: a redelivery has no second effect.
CREATE TABLE webhook_events (
    event_id    text PRIMARY KEY,
    event_name  text NOT NULL,
    subject_id  text,
    received_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE bulk_sends (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    firm_id     uuid NOT NULL REFERENCES firms (id) ON DELETE CASCADE,
    total       integer NOT NULL CHECK (total >= 0),
    created_at  timestamptz NOT NULL DEFAULT now(),
    finished_at timestamptz
);
CREATE INDEX bulk_sends_firm ON bulk_sends (firm_id, created_at);

CREATE TABLE bulk_send_items (
    bulk_send_id uuid NOT NULL REFERENCES bulk_sends (id) ON DELETE CASCADE,
    position     integer NOT NULL,
    dossier_id   uuid NOT NULL,
    outcome      text NOT NULL DEFAULT 'queued'
        CHECK (outcome IN ('queued', 'sending', 'sent', 'skipped', 'failed')),
    reason       text,
    mandate_id   uuid,
    updated_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (bulk_send_id, position),
    UNIQUE (bulk_send_id, dossier_id)
);
CREATE INDEX bulk_send_items_outcome ON bulk_send_items (bulk_send_id, outcome);
