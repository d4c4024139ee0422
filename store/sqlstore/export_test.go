package sqlstore

import (
	"context"
	"database/sql"
	"time"
)

// MigrateTo brings the database behind db to schema version v and no
// further, as an earlier version of the package would have left it.
func MigrateTo(ctx context.Context, db *sql.DB, d Dialect, v int) error {
	s, err := newStore(db, d, options{now: time.Now, maxRetries: DefaultMaxRetries})
	if err != nil {
		return err
	}
	return s.migrate(ctx, v)
}
