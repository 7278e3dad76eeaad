#!/bin/sh
# One-shot job (temporalio/admin-tools): create Temporal's two databases and bring their schemas up
# to date. Safe on every `docker compose up`: `create` ignores an existing database, `setup-schema`
# keeps a newer version, `update-schema` applies only what is missing.
set -eu
: "${POSTGRES_SEEDS:=postgres}" "${DB_PORT:=5432}" "${POSTGRES_USER:?}" "${SQL_PASSWORD:?}"
SCHEMA_DIR=/etc/temporal/schema/postgresql/v12

sql_tool() {  # retried: PostgreSQL may still be finishing its first start-up (a new volume)
  tries=0
  until temporal-sql-tool --plugin postgres12 --ep "$POSTGRES_SEEDS" -p "$DB_PORT" -u "$POSTGRES_USER" "$@"; do
    tries=$((tries + 1))
    if [ "$tries" -ge 30 ]; then echo "giving up: temporal-sql-tool $*" >&2; exit 1; fi
    sleep 2
  done
}

for database in temporal temporal_visibility; do
  if [ "$database" = temporal ]; then versioned="$SCHEMA_DIR/temporal/versioned"
  else versioned="$SCHEMA_DIR/visibility/versioned"; fi
  echo "Temporal schema: $database"
  sql_tool --db "$database" create
  sql_tool --db "$database" setup-schema -v 0.0
  sql_tool --db "$database" update-schema -d "$versioned"
done
echo "Temporal schemas are up to date"
