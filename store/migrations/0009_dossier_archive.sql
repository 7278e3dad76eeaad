-- A client who left: its dossier is kept with its mandates' history, out of the firm's list and counts.
ALTER TABLE dossiers ADD COLUMN archived_at timestamptz;
