package sqlstore_test

import (
	"fmt"
	"os"
	"sync/atomic"
	"testing"

	"github.com/botdistributor/botdistributor/store"
	"github.com/botdistributor/botdistributor/store/sqlstore"
	"github.com/botdistributor/botdistributor/store/storetest"
)

// conformanceConcurrency is how many cases of the conformance suite run at
// once on each engine: every case has a database of its own, and most of
// them wait (for a commit, for River's polling). It is kept small for
// PostgreSQL's connection limit (100 by default): a case's pool opens at
// most 32 connections (newPostgresDB), and the invariant hammer, which
// would use them all, runs alone.
const conformanceConcurrency = 4

// TestSQLite runs the conformance suite on a SQLite file of its own per
// subtest, migrated and holding no data (see migratedSQLiteDSN).
func TestSQLite(t *testing.T) {
	t.Parallel()
	storetest.Run(t, func(t *testing.T) store.Store {
		return open(t, newSQLiteDB(t), sqlstore.SQLite)
	}, storetest.WithConcurrency(conformanceConcurrency))
}

// TestSQLiteMemory runs the conformance suite on in-memory databases,
// each behind a pool of one connection as the package documentation asks:
// no write may wait for a second connection. Each database is named and
// kept open by a connection of its own, as the documentation advises: a
// connection the pool drops (a query a stop interrupted) takes a private
// in-memory database with it.
func TestSQLiteMemory(t *testing.T) {
	t.Parallel()
	var n atomic.Int64
	storetest.Run(t, func(t *testing.T) store.Store {
		dsn := fmt.Sprintf("file:conformance-%d-%d?mode=memory&cache=shared", os.Getpid(), n.Add(1))
		keep := openDB(t, "sqlite", dsn)
		if err := keep.PingContext(t.Context()); err != nil {
			t.Fatal(err)
		}
		db := openDB(t, "sqlite", dsn)
		db.SetMaxOpenConns(1)
		return open(t, db, sqlstore.SQLite)
	}, storetest.WithConcurrency(conformanceConcurrency))
}

// TestPostgres runs the conformance suite on a PostgreSQL schema of its own
// per subtest, migrated and holding no data (see migratedPostgresSchema).
func TestPostgres(t *testing.T) {
	t.Parallel()
	postgresDSN(t)
	storetest.Run(t, func(t *testing.T) store.Store {
		return open(t, newPostgresDB(t), sqlstore.Postgres)
	}, storetest.WithConcurrency(conformanceConcurrency))
}
