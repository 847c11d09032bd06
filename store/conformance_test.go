package store_test

import (
	"testing"

	"tether/store/pgtest"
	"tether/store/storetest"
)

// TestConformance runs the suite every storage engine must pass on the
// embedded SQLite engine.
func TestConformance(t *testing.T) { storetest.Run(t, storetest.SQLite{}) }

// TestPostgres runs the conformance suite and the history tests on
// PostgreSQL, one cluster for all of them.
func TestPostgres(t *testing.T) {
	e := storetest.Postgres{Cluster: pgtest.Start(t)}
	t.Run("conformance", func(t *testing.T) { storetest.Run(t, e) })
	t.Run("node registry", func(t *testing.T) { testNodes(t, e.Open(t)) })
	t.Run("copy from SQLite", func(t *testing.T) { testCopyTo(t, e.Open(t)) })
	for _, h := range historyTests {
		t.Run("history "+h.name, func(t *testing.T) { h.run(t, e.Open(t)) })
	}
}
