#!/bin/sh
# The container's command: read the API token (and optionally the database URL) from mounted
# secret files, then become `scheduler run` with exec, so the daemon is PID 1 and receives
# SIGTERM (stop), SIGHUP (reconcile) and reaps its jobs' orphans itself. The lock and the
# control socket go to $TMPDIR/scheduler-<uid>, created private (0700) by the daemon.
# Also used by tests/test_deploy_entrypoint_runs_as_pid_1.py outside a container.
set -eu
secrets="${SCHEDULER_SECRETS_DIR:-/run/secrets/scheduler}"
if [ -z "${SCHEDULER_API_TOKEN:-}" ] && [ -r "$secrets/token" ]; then
    SCHEDULER_API_TOKEN="$(cat "$secrets/token")"
    export SCHEDULER_API_TOKEN
fi
if [ -r "$secrets/db-url" ]; then  # the secret wins over the image's SQLite default
    SCHEDULER_DB="$(cat "$secrets/db-url")"
    export SCHEDULER_DB
fi
if [ -z "${SCHEDULER_API_TOKEN:-}" ]; then
    echo "entrypoint: no API token: mount a secret file at $secrets/token or set" \
        "SCHEDULER_API_TOKEN (the API listens on every interface of the container)" >&2
    exit 1
fi
exec scheduler run --http "${SCHEDULER_HTTP:-0.0.0.0:8080}" "$@"
