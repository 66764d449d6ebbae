#!/usr/bin/env bash
# A background worker: counts processed jobs in the key-value store until stopped.
set -euo pipefail
replica=${HERDER_REPLICA:-0}
trap 'echo "worker $replica stopping"; exit 0' INT TERM
echo "worker $replica ready"
job=0
while true; do
  job=$((job + 1))
  exec 3<>"/dev/tcp/127.0.0.1/${DB_PORT:?}"
  printf 'SET worker-%s-jobs %s\n' "$replica" "$job" >&3
  read -r _ <&3
  exec 3>&-
  echo "worker $replica processed job $job"
  sleep "${JOB_INTERVAL:-2}" & wait $!
done
