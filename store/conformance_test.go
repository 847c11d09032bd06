package store_test

import (
	"testing"

	"tether/store/storetest"
)

// TestConformance runs the suite every storage engine must pass on the
// embedded SQLite engine.
func TestConformance(t *testing.T) { storetest.Run(t, storetest.SQLite{}) }
