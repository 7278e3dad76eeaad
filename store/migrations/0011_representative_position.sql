-- The client representative's position (Gérant, Président...), printed as their capacity on the mandate.
ALTER TABLE dossiers ADD COLUMN rep_position text;
