// Package web serves the browser client (React + TypeScript, built by Vite
// from web/src into web/dist) from the binary itself: the built files are
// committed and embedded, so `prescripto serve` needs no Node.js.
package web

import "embed"

// dist is Vite's output. `all:` keeps files whose names start with "_" or
// "." should the build ever emit one.
//
//go:embed all:dist
var dist embed.FS
