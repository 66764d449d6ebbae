#!/usr/bin/env bash
# Writes the schema version into the key-value store, then exits 0 (a oneshot).
set -euo pipefail
exec 3<>"/dev/tcp/127.0.0.1/${DB_PORT:?}"
printf 'SET schema_version %s\n' "${SCHEMA_VERSION:?}" >&3
read -r reply <&3
[ "$reply" = OK ] || { echo "migration failed: $reply" >&2; exit 1; }
echo "migrated to schema version $SCHEMA_VERSION"
