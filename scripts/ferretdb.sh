#!/usr/bin/env bash
# Builds FerretDB v1 (MongoDB wire protocol on SQLite) from the Go module proxy and
# caches the binary. Prints the binary's path. A no-op when the binary is present.
#
# One line of FerretDB is patched before the build (the binary's name says so):
# v1.24.2 creates the _id index on the expression _ferretdb_sjson->"_id" but
# looks documents up by _id with _ferretdb_sjson->'$._id'. SQLite matches an
# index to a query by the expression's text, so that index never serves a find,
# update or delete by _id: each one scans the whole table (`explain` says
# "SCAN docs_..." with filterPushdown true), and a collection of 10,000
# documents costs ~25 ms per lookup. The patch writes the lookup as
# _ferretdb_sjson->'_id', the same JSON path in the index's own spelling
# (SQLite: a label X means '$.X'), so lookups by _id use the index as on
# MongoDB. Nothing else changes: same storage, same answers.
#
#   bash scripts/ferretdb.sh            # build (or find) and print the path
#   FERRETDB_BIN=/path bash scripts/... # override the cache path
#
# Tests find the binary through PRESCRIPTO_FERRETDB or the same default path
# (internal/testenv/mongo.go).
set -euo pipefail

version="v1.24.2"
patch="idindex"
cache_root="${XDG_CACHE_HOME:-$HOME/.cache}/prescripto"
bin="${FERRETDB_BIN:-$cache_root/ferretdb-$version-$patch}"

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

# The _id lookup in the index's spelling (see the top of this file).
meta="$src/internal/backends/sqlite/metadata/metadata.go"
sed -i "s|IDColumn = DefaultColumn + \"->'\\\$._id'\"|IDColumn = DefaultColumn + \"->'_id'\"|" "$meta"
if ! grep -q "IDColumn = DefaultColumn + \"->'_id'\"" "$meta"; then
	echo "ferretdb.sh: the _id lookup patch did not apply to $meta" >&2
	exit 1
fi

mkdir -p "$(dirname "$bin")"
tmpbin="$bin.tmp.$$"
(cd "$src" && GOWORK=off GOFLAGS=-mod=mod CGO_ENABLED=0 go build -trimpath -o "$tmpbin" ./cmd/ferretdb) >&2
mv -f "$tmpbin" "$bin"

echo "ferretdb.sh: built FerretDB $version ($patch) in $(( $(date +%s) - start ))s" >&2
echo "$bin"
