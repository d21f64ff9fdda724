#!/usr/bin/env bash
# Runs every native fuzz target (func FuzzXxx in a _test.go file) for
# FUZZTIME each: `go test -fuzz` takes one target per run, so this lists
# them per package and loops. CI runs it short (FUZZTIME=10s), `make fuzz`
# long. A failure stops the run; go test has then written the input to the
# package's testdata/fuzz/FuzzXxx/, where it stays as a regression seed once
# committed. The plain `go test ./...` replays every committed corpus.
#
# FUZZTIME  time (or Nx execs) per target, default 10s
# FUZZPKGS  packages to fuzz, default every package with a Fuzz target
# FUZZLOG   directory for each target's full output, default a temp dir
set -euo pipefail
cd "$(dirname "$0")/.."

FUZZTIME=${FUZZTIME:-10s}
GO=${GO:-go}
log=${FUZZLOG:-$(mktemp -d)}
mkdir -p "$log"
if [ -z "${FUZZPKGS:-}" ]; then
  FUZZPKGS=$(git grep -l -E '^func Fuzz[A-Za-z0-9_]*\(f \*testing\.F\)' -- '*_test.go' | xargs -n1 dirname | sort -u | sed 's|^|./|')
fi

printf '%-28s %-40s %12s %12s\n' target package execs interesting
for pkg in $FUZZPKGS; do
  for target in $($GO test -list '^Fuzz' "$pkg" | grep -E '^Fuzz'); do
    out="$log/$(echo "$pkg" | tr '/.' '__')_$target.log"
    if ! $GO test -run '^$' -fuzz "^${target}\$" -fuzztime "$FUZZTIME" "$pkg" >"$out" 2>&1; then
      cat "$out"
      echo "fuzz: $target in $pkg failed; the input is under $pkg/testdata/fuzz/$target/"
      exit 1
    fi
    # The last progress line has the totals: "execs: N (..), new interesting: M (total: T)".
    last=$(grep -E '^fuzz: elapsed' "$out" | tail -1 || true)
    execs=$(sed -nE 's/.*execs: ([0-9]+).*/\1/p' <<<"$last")
    news=$(sed -nE 's/.*new interesting: ([0-9]+).*/\1/p' <<<"$last")
    printf '%-28s %-40s %12s %12s\n' "$target" "$pkg" "${execs:-?}" "${news:-?}"
  done
done
echo "fuzz: logs in $log"
