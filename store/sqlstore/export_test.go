package sqlstore

import (
	"context"
	"database/sql"
	"time"
)

// MigrateTo brings the database behind db to schema version v and no
// further, as an earlier version of the package would have left it.
func MigrateTo(ctx context.Context, db *sql.DB, d Dialect, v int) error {
	s := &Store{db: db, dialect: d, now: time.Now, maxRetries: DefaultMaxRetries}
	if d == SQLite {
		s.writer = make(chan struct{}, 1)
	}
	return s.migrate(ctx, v)
}
