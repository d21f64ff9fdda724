#!/usr/bin/env bash
# Builds FerretDB v1 (MongoDB wire protocol on SQLite) from the Go module proxy and
# caches the binary. Prints the binary's path. A no-op when the binary is present.
#
#   bash scripts/ferretdb.sh            # build (or find) and print the path
#   FERRETDB_BIN=/path bash scripts/... # override the cache path
#
# Tests find the binary through PRESCRIPTO_FERRETDB or the same default path
# (internal/testenv/mongo.go).
set -euo pipefail

version="v1.24.2"
cache_root="${XDG_CACHE_HOME:-$HOME/.cache}/prescripto"
bin="${FERRETDB_BIN:-$cache_root/ferretdb-$version}"

if [[ -x "$bin" ]]; then
	echo "$bin"
	exit 0
fi

command -v go >/dev/null || { echo "ferretdb.sh: go is required" >&2; exit 1; }

start=$(date +%s)
work="$(mktemp -d)"
trap 'chmod -R u+w "$work" 2>/dev/null || true; rm -rf "$work"' EXIT

# Download the module (through GOPROXY, like any other module) and find its directory.
# Run outside any module so the project's go.mod is neither read nor written.
dir="$(cd "$work" && GOFLAGS= GO111MODULE=on go mod download -json "github.com/FerretDB/FerretDB@$version" |
	sed -n 's/^[[:space:]]*"Dir": "\(.*\)",\{0,1\}$/\1/p')"
if [[ -z "$dir" || ! -d "$dir" ]]; then
	echo "ferretdb.sh: could not download github.com/FerretDB/FerretDB@$version" >&2
	exit 1
fi

src="$work/ferretdb"
cp -R "$dir" "$src"
chmod -R u+w "$src"
# The module zip lacks build/version/version.txt, which the build embeds.
mkdir -p "$src/build/version"
echo "$version" >"$src/build/version/version.txt"

mkdir -p "$(dirname "$bin")"
tmpbin="$bin.tmp.$$"
(cd "$src" && GOWORK=off GOFLAGS=-mod=mod CGO_ENABLED=0 go build -trimpath -o "$tmpbin" ./cmd/ferretdb) >&2
mv -f "$tmpbin" "$bin"

echo "ferretdb.sh: built FerretDB $version in $(( $(date +%s) - start ))s" >&2
echo "$bin"
