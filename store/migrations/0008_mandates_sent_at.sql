-- A bulk send's progress tells a stall from pacing by the service's latest send: found in the index.
CREATE INDEX mandates_sent_at ON mandates (sent_at) WHERE sent_at IS NOT NULL;
