-- Block 5 of the DGFiP accord formel: the platform that received the client's invoices before (if any).
ALTER TABLE dossiers
    ADD COLUMN previous_platform_name     text,
    ADD COLUMN previous_platform_siren    char(9) CHECK (previous_platform_siren ~ '^[0-9]{9}$'),
    ADD COLUMN previous_platform_matricule char(4) CHECK (previous_platform_matricule ~ '^[0-9]{4}$'),
    ADD CHECK (
        previous_platform_name IS NULL
        OR previous_platform_siren IS NOT NULL
        OR previous_platform_matricule IS NOT NULL
    );
