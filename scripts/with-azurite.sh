#!/usr/bin/env bash
# Run a command with Azurite (Azure Storage's emulator, from npm) installed under .cache/azurite,
# exporting its blob server as LENSVAULT_TEST_AZURITE. The az:// remote tests start it themselves
# (tests/remotes/conftest.py: a random loopback port, in memory) and stop it afterwards, as
# scripts/with-postgres.sh does for PostgreSQL. The install happens once; later runs find it.
#
# If node/npm are missing and we are root, they are installed from Debian's packages; if Azurite
# still cannot be installed, this says so loudly and the az:// tests are skipped with that reason.
set -uo pipefail

VERSION=3.37.0
DIR="$(cd "$(dirname "$0")/.." && pwd)/.cache/azurite"
BIN="$DIR/node_modules/.bin/azurite-blob"

installed() {
    [ -x "$BIN" ] && grep -q "\"version\": \"$VERSION\"" "$DIR/node_modules/azurite/package.json" 2>/dev/null
}

if ! installed; then
    if ! command -v npm >/dev/null 2>&1 && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        echo "with-azurite: installing node and npm from Debian's packages" >&2
        (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm >/dev/null) >&2
    fi
    if command -v npm >/dev/null 2>&1; then
        echo "with-azurite: installing azurite $VERSION from npm into .cache/azurite (once)" >&2
        mkdir -p "$DIR"
        npm install --prefix "$DIR" --no-audit --no-fund --silent "azurite@$VERSION" >&2
    fi
fi
if installed; then
    export LENSVAULT_TEST_AZURITE="$BIN"
    echo "with-azurite: azurite $VERSION ($BIN)" >&2
else
    echo "with-azurite: WARNING: Azurite could not be installed; the az:// remote tests will be SKIPPED" >&2
fi
exec "$@"
