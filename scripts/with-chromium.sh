#!/usr/bin/env bash
# Run a command with Debian's Chromium available for the browser tests (tests/server), as
# scripts/with-postgres.sh does for PostgreSQL. Playwright drives /usr/bin/chromium through its
# executable_path: nothing downloads a browser of its own.
#
# If Chromium is missing and we are root, it is installed from Debian's packages; otherwise
# the browser tests are skipped with a reason.
set -uo pipefail

if [ ! -x /usr/bin/chromium ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "with-chromium: installing Chromium from Debian's packages" >&2
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) >&2
fi
if [ -x /usr/bin/chromium ]; then
    echo "with-chromium: $(/usr/bin/chromium --version 2>/dev/null | head -1)" >&2
else
    echo "with-chromium: Chromium not found; browser tests will be skipped" >&2
fi
exec "$@"
