-- The DGFiP numbering (SIREN_PA_YYYYMMDD_NN) counts per company and day, across dossiers and firms:
-- two mandates never share a number. Byte order ("C") lets a prefix range use the index.
CREATE UNIQUE INDEX mandates_number ON mandates (number COLLATE "C");
