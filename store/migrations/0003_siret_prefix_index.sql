-- Searching by the start of a SIRET: a pattern-ops index serves `LIKE 'prefix%'` whatever the
-- database's collation (and equality too, so it replaces the plain one).
DROP INDEX dossiers_firm_siret;
CREATE INDEX dossiers_firm_siret_prefix ON dossiers (firm_id, siret bpchar_pattern_ops);
