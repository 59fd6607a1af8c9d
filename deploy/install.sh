#!/bin/sh
# Install the scheduler into its own virtualenv: the Dockerfile's build stage runs this, and
# .ci/run runs it outside a container (no image registry is reachable there).
#   deploy/install.sh SOURCE_DIR PREFIX     e.g. deploy/install.sh . /opt/scheduler
set -eu
src="${1:?usage: install.sh SOURCE_DIR PREFIX}"
prefix="${2:?usage: install.sh SOURCE_DIR PREFIX}"
python3 -m venv "$prefix"
"$prefix/bin/pip" install --no-cache-dir --disable-pip-version-check -q "$src"
"$prefix/bin/scheduler" --version >/dev/null
echo "installed $("$prefix/bin/scheduler" --version) into $prefix"
