#!/bin/sh
# One-shot job (temporalio/admin-tools): the namespace and the custom search attributes the mandate
# workflows upsert. Idempotent: what exists is left as it is.
set -eu
export TEMPORAL_ADDRESS="${TEMPORAL_ADDRESS:-temporal:7233}"
NAMESPACE="${TEMPORAL_NAMESPACE:-default}"
RETENTION="${TEMPORAL_RETENTION:-720h}"  # closed mandate histories stay 30 days

retry() {  # retry <what> <command...>: the frontend may need a moment after it starts
  what=$1; shift
  tries=0
  until "$@"; do
    tries=$((tries + 1))
    if [ "$tries" -ge 30 ]; then echo "giving up: $what" >&2; exit 1; fi
    sleep 2
  done
}

retry "Temporal at $TEMPORAL_ADDRESS is not healthy" temporal operator cluster health

if ! temporal operator namespace describe --namespace "$NAMESPACE" >/dev/null 2>&1; then
  retry "cannot create namespace $NAMESPACE" \
    temporal operator namespace create --namespace "$NAMESPACE" --retention "$RETENTION"
fi

# Keyword and Datetime only: PostgreSQL visibility has 10 Keyword and 3 Datetime slots per namespace.
# Keep this list in step with config/temporal.py (SEARCH_ATTRIBUTES); tests/test_compose.py checks it.
missing=""
existing=$(temporal operator search-attribute list --namespace "$NAMESPACE" 2>/dev/null || true)
for attribute in FirmId:Keyword DossierId:Keyword MandateStatus:Keyword BulkSendId:Keyword \
                 MandateExpiresAt:Datetime; do
  name=${attribute%%:*}
  if ! printf '%s\n' "$existing" | grep -qw "$name"; then
    missing="$missing --name $name --type ${attribute#*:}"
  fi
done
if [ -n "$missing" ]; then
  # shellcheck disable=SC2086 # $missing is a list of flags
  retry "cannot create search attributes:$missing" \
    temporal operator search-attribute create --namespace "$NAMESPACE" $missing
fi
temporal operator search-attribute list --namespace "$NAMESPACE"
echo "Namespace $NAMESPACE is ready"
