package sqlstore_test

import (
	"testing"

	"github.com/botdistributor/botdistributor/store"
	"github.com/botdistributor/botdistributor/store/sqlstore"
	"github.com/botdistributor/botdistributor/store/storetest"
)

// TestSQLite runs the conformance suite on a fresh SQLite file per subtest.
func TestSQLite(t *testing.T) {
	t.Parallel()
	storetest.Run(t, func(t *testing.T) store.Store {
		return open(t, newSQLiteDB(t), sqlstore.SQLite)
	})
}

// TestSQLiteMemory runs the conformance suite on private in-memory
// databases, each behind a pool of one connection as the package
// documentation asks: no write may wait for a second connection.
func TestSQLiteMemory(t *testing.T) {
	t.Parallel()
	storetest.Run(t, func(t *testing.T) store.Store {
		db := openDB(t, "sqlite", ":memory:")
		db.SetMaxOpenConns(1)
		return open(t, db, sqlstore.SQLite)
	})
}

// TestPostgres runs the conformance suite on a fresh PostgreSQL schema per
// subtest.
func TestPostgres(t *testing.T) {
	t.Parallel()
	postgresDSN(t)
	storetest.Run(t, func(t *testing.T) store.Store {
		return open(t, newPostgresDB(t), sqlstore.Postgres)
	})
}
