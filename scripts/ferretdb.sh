#!/usr/bin/env bash
# Builds FerretDB v1 (MongoDB wire protocol on SQLite) from the Go module proxy and
# caches the binary. Prints the binary's path. A no-op when the binary is present.
#
# Two lookups of FerretDB are patched before the build (the binary's name says so),
# so that finding a document by _id costs what it costs on MongoDB, one index probe,
# instead of a scan of the collection that grows with it:
#  1. v1.24.2 creates the _id index on the expression _ferretdb_sjson->"_id" but
#     looks documents up with _ferretdb_sjson->'$._id'. SQLite matches an index to
#     a query by the expression's text, so the index never served a find, update or
#     delete by _id (`explain`: "SCAN docs_..." although filterPushdown is true);
#     at 10,000 documents a lookup cost ~25 ms. The patch spells the lookup
#     _ferretdb_sjson->'_id', the same JSON path as the index (SQLite: a label X
#     means '$.X').
#  2. Only a filter of exactly one key, {_id: V}, was narrowed in SQL; {_id: V,
#     status: S} (a compare-and-set, as the outbox's leases do) read and decoded
#     every document of the collection. The patch narrows any filter with a
#     top-level _id equality to that _id in SQL. The handler still applies the
#     whole filter to what SQL returns (find, update and delete all do), and a
#     top-level field is ANDed with the rest, so the answers are the same.
#  3. An update command's updates each open a query (the documents to change) and
#     close it with a `defer` inside the loop over the updates, so every query stays
#     open until the whole command is done. Each open query holds one of the
#     database's 100 SQLite connections (`SetMaxOpenConns(100)`), and writing needs
#     another: one update command with 100 updates (an unordered bulk write of 100
#     documents, as the MongoDB read models send after a backlog) held all 100 and
#     waited for a 101st for ever, and every later operation on that database queued
#     behind it. (FerretDB's own resource profiles, `/debug/pprof/FerretDB/
#     iterator.MultiCloser`, showed the 100 from `updateDocument`.) The patch closes
#     each update's query once that update is done.
# Nothing else changes: same storage, same answers.
#
#   bash scripts/ferretdb.sh            # build (or find) and print the path
#   FERRETDB_BIN=/path bash scripts/... # override the cache path
#
# Tests find the binary through PRESCRIPTO_FERRETDB or the same default path
# (internal/testenv/mongo.go).
set -euo pipefail

version="v1.24.2"
patch="idlookup-updclose"
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

# The patches (see the top of this file); each must apply exactly.
meta="$src/internal/backends/sqlite/metadata/metadata.go"
sed -i "s|IDColumn = DefaultColumn + \"->'\\\$._id'\"|IDColumn = DefaultColumn + \"->'_id'\"|" "$meta"
if ! grep -q "IDColumn = DefaultColumn + \"->'_id'\"" "$meta"; then
	echo "ferretdb.sh: patch 1 (_id lookup in the index's spelling) did not apply to $meta" >&2
	exit 1
fi
coll="$src/internal/backends/sqlite/collection.go"
if [[ $(grep -c 'if params.Filter.Len() == 1 {' "$coll") != 2 ]]; then
	echo "ferretdb.sh: patch 2 (narrow by _id) does not match $coll" >&2
	exit 1
fi
sed -i 's|if params.Filter.Len() == 1 {|if params.Filter.Len() >= 1 {|' "$coll"
upd="$src/internal/handler/msg_update.go"
if [[ $(grep -c $'^\t\tdefer closer.Close()$' "$upd") != 1 ||
	$(grep -c $'^\t\tresult, err := common.UpdateDocument(ctx, c, "update", iter, &u)$' "$upd") != 1 ]]; then
	echo "ferretdb.sh: patch 3 (close each update's query) does not match $upd" >&2
	exit 1
fi
sed -i -e $'/^\t\tdefer closer.Close()$/d' \
	-e $'s|^\t\tresult, err := common.UpdateDocument(ctx, c, "update", iter, &u)$|&\\n\t\tcloser.Close()|' "$upd"
if grep -q $'^\t\tdefer closer.Close()$' "$upd" || [[ $(grep -c $'^\t\tcloser.Close()$' "$upd") != 1 ]]; then
	echo "ferretdb.sh: patch 3 (close each update's query) did not apply to $upd" >&2
	exit 1
fi

mkdir -p "$(dirname "$bin")"
tmpbin="$bin.tmp.$$"
(cd "$src" && GOWORK=off GOFLAGS=-mod=mod CGO_ENABLED=0 go build -trimpath -o "$tmpbin" ./cmd/ferretdb) >&2
mv -f "$tmpbin" "$bin"

echo "ferretdb.sh: built FerretDB $version ($patch) in $(( $(date +%s) - start ))s" >&2
echo "$bin"
