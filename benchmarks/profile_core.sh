#!/usr/bin/env bash
# Profile the LensVault side of the core benchmark with pyinstrument (text reports)
# and cProfile (.prof, for snakeviz / pstats), on the data core_vs_dvc.py generated.
#
#   benchmarks/profile_core.sh [WORKDIR]      # default benchmarks/.work
# Reports land in WORKDIR/profiles/*.txt and *.prof.
set -euo pipefail
cd "$(dirname "$0")/.."
W="$(realpath "${1:-benchmarks/.work}")"
B=.venv-bench/bin
P="$W/profiles"
R="$W/profile-run"
[[ -d "$W/data" ]] || { echo "no $W/data: run core_vs_dvc.py first"; exit 1; }
rm -rf "$R" && mkdir -p "$R" "$P"
cp -r "$W/data" "$R/data"
$B/lensvault init "$R/vault" >/dev/null
LV=($B/lensvault --vault "$R/vault")

prof() {  # name, then the lensvault arguments
    local name=$1; shift
    local t0=$(date +%s.%N)
    $B/pyinstrument -i 0.001 -r text --show-all -o "$P/$name.txt" $B/lensvault "$@" >/dev/null || true
    local t1=$(date +%s.%N)
    echo "$name: $(echo "$t1 - $t0" | bc) s (under pyinstrument)"
}

prof snapshot_hardlink --vault "$R/vault" dataset snapshot ds "$R/data" --version 1.0.0 --link hardlink --json
prof snapshot_again    --vault "$R/vault" dataset snapshot ds "$R/data" --version 1.0.1 --link hardlink --json
prof status            --vault "$R/vault" status ds@1.0.1 "$R/data" --json
prof checkout_hardlink --vault "$R/vault" dataset checkout ds@1.0.1 "$R/out-hl" --link hardlink --json
prof checkout_copy     --vault "$R/vault" dataset checkout ds@1.0.1 "$R/out-cp" --link copy --json
rm -rf "$R/out-hl"
# copy mode: a fresh vault so every object is new
$B/lensvault init "$R/vault-copy" >/dev/null
prof snapshot_copy     --vault "$R/vault-copy" dataset snapshot ds "$R/out-cp" --version 1.0.0 --link copy --json
# cProfile of the two commands that matter most, for per-function call counts
$B/python -m cProfile -o "$P/status.prof" $B/lensvault --vault "$R/vault" status ds@1.0.1 "$R/data" >/dev/null || true
$B/python -m cProfile -o "$P/snapshot_again.prof" $B/lensvault --vault "$R/vault" dataset snapshot ds "$R/data" --version 1.0.2 --link hardlink >/dev/null || true
$B/pyinstrument -i 0.001 -r text -o "$P/help.txt" $B/lensvault --help >/dev/null
echo "reports in $P"
