#!/usr/bin/env bash
# Instructions per event on the emitter's two hot paths, counted by callgrind: each
# scenario runs twice (SMALL and LARGE events) and the difference is divided by the extra
# events, so that start-up, set-up and tear-down cancel out. The counts repeat exactly from
# run to run, unlike times on this machine.
#
#   benches/count-instructions.sh            # both scenarios
#   SMALL=1000 LARGE=21000 benches/count-instructions.sh emit
set -euo pipefail
cd "$(dirname "$0")/.."
command -v valgrind >/dev/null || { echo "valgrind is missing: apt-get install valgrind" >&2; exit 1; }
small=${SMALL:-1000}
large=${LARGE:-51000}
cargo build --profile profiling -p demitter-benches --bin demitter-instructions --quiet
bin=target/profiling/demitter-instructions
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
count() { # scenario events -> total instructions
  valgrind --tool=callgrind --callgrind-out-file="$out/$1-$2" "$bin" "$1" "$2" 2>&1 |
    awk '/Collected :/ {print $4}'
}
for scenario in "${@:-emit receive}"; do
  for s in $scenario; do
    a=$(count "$s" "$small")
    b=$(count "$s" "$large")
    echo "$s: $(( (b - a) / (large - small) )) instructions per event ($a for $small events, $b for $large)"
  done
done
