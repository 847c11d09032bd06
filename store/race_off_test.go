//go:build !race

package store_test

// raceEnabled reports whether the race detector is on; timing tests skip then.
const raceEnabled = false
