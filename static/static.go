// Package static holds the console's stylesheet, scripts (ES modules, no
// build step) and icon, embedded in the binary.
package static

import "embed"

// FS holds the console's static files at its root (console.css,
// history.css, console.js, live.js, actions.js, preview.js, history.js,
// countdown.js, favicon.svg).
//
//go:embed *.css *.js *.svg
var FS embed.FS
