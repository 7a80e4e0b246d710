#!/usr/bin/env bash
# Sets everything up (scripts/setup.sh), then runs the unit tests and the
# system tests with the real Debian guest.
set -euo pipefail

cd "$(dirname "$0")/.."
scripts/setup.sh

meson test -C build --print-errorlogs --suite unit
# Debian's pytest belongs to /usr/bin/python3, not to any other python3 on PATH.
exec /usr/bin/python3 -m pytest -v tests/system "$@"
