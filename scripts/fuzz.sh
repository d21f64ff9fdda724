#!/usr/bin/env bash
# Runs every native fuzz target (func FuzzXxx in a _test.go file) for
# FUZZTIME each: `go test -fuzz` takes one target per run, so this lists
# them per package and loops. CI runs it short (FUZZTIME=10s), `make fuzz`
# long. A failure stops the run; go test has then written the input to the
# package's testdata/fuzz/FuzzXxx/, where it stays as a regression seed once
# committed. The plain `go test ./...` replays every committed corpus. A
# run that ends with the fuzzing engine's own deadline race (Go < 1.27,
# go.dev/issue/75804: a bare "context deadline exceeded", no input written)
# runs once more; a second failure fails.
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
    run() { $GO test -run '^$' -fuzz "^${target}\$" -fuzztime "$FUZZTIME" "$pkg" >"$out" 2>&1; }
    if ! run; then
      # Go before 1.27 may end a -fuzztime run with a bare "context deadline
      # exceeded" when the deadline races a busy worker (go.dev/issue/75804):
      # no input written, nothing found. That, and only that, runs once more.
      if grep -q 'context deadline exceeded' "$out" && ! grep -qE 'Failing input written|panic:|\.go:[0-9]+: ' "$out"; then
        echo "fuzz: $target in $pkg: the fuzzing engine's deadline race (go.dev/issue/75804), no input found; running it again" >&2
        mv "$out" "$out.deadline"
        run && ok=1 || ok=0
      else
        ok=0
      fi
      if [ "$ok" = 0 ]; then
        cat "$out"
        echo "fuzz: $target in $pkg failed; the input is under $pkg/testdata/fuzz/$target/"
        exit 1
      fi
    fi
    # The last progress line has the totals: "execs: N (..), new interesting: M (total: T)".
    last=$(grep -E '^fuzz: elapsed' "$out" | tail -1 || true)
    execs=$(sed -nE 's/.*execs: ([0-9]+).*/\1/p' <<<"$last")
    news=$(sed -nE 's/.*new interesting: ([0-9]+).*/\1/p' <<<"$last")
    printf '%-28s %-40s %12s %12s\n' "$target" "$pkg" "${execs:-?}" "${news:-?}"
  done
done
echo "fuzz: logs in $log"
