#!/bin/sh
# What the image build does, without a container engine: install with deploy/install.sh into
# a fresh prefix (from PyPI), then run the entrypoint test against that install. Run by .ci/run.
set -eu
cd "$(dirname "$0")/.."
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
sh deploy/install.sh . "$work/opt/scheduler"
DEPLOY_PREFIX="$work/opt/scheduler" python -m pytest -q -p no:cacheprovider \
    tests/test_deploy_entrypoint_runs_as_pid_1.py
