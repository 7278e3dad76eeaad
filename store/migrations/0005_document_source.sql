-- What a generated mandate was rendered from (a SHA-256 of its data): a draft whose firm or dossier
-- has changed since is not sent. Absent for documents made before this column.
ALTER TABLE mandate_documents ADD COLUMN source_sha256 text;
