package sqlstore

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Dialect names the SQL database behind the *sql.DB given to [Open].
type Dialect uint8

const (
	// SQLite is SQLite 3.37 or newer through a database/sql driver such
	// as modernc.org/sqlite (driver name "sqlite"). See the package
	// documentation for the connection settings it needs.
	SQLite Dialect = iota + 1
	// Postgres is PostgreSQL 12 or newer through a database/sql driver
	// such as github.com/jackc/pgx/v5/stdlib (driver name "pgx").
	Postgres
)

// String returns "sqlite", "postgres" or a description of an unknown value.
func (d Dialect) String() string {
	switch d {
	case SQLite:
		return "sqlite"
	case Postgres:
		return "postgres"
	}
	return "Dialect(" + strconv.Itoa(int(d)) + ")"
}

func (d Dialect) valid() bool { return d == SQLite || d == Postgres }

// timeArg converts t to the column value the dialect stores: a UTC
// timestamptz of microsecond precision for PostgreSQL, microseconds since
// the Unix epoch for SQLite. The zero time is stored as such (year 1), so
// that ordering by a time column needs no NULL handling.
func (d Dialect) timeArg(t time.Time) any {
	t = t.UTC().Truncate(time.Microsecond)
	if d == SQLite {
		return t.UnixMicro()
	}
	return t
}

// timeCol scans a time column written by timeArg, in either dialect.
type timeCol struct{ t *time.Time }

// Scan implements sql.Scanner.
func (c timeCol) Scan(src any) error {
	switch v := src.(type) {
	case time.Time:
		*c.t = v.UTC()
	case int64:
		*c.t = time.UnixMicro(v).UTC()
	case nil:
		*c.t = time.Time{}
	default:
		return fmt.Errorf("sqlstore: cannot read a time from a %T column value", src)
	}
	return nil
}

// sqlStateError is implemented by PostgreSQL driver errors (pgconn.PgError,
// and lib/pq's Error), so the library needs no driver import to read them.
type sqlStateError interface {
	error
	SQLState() string
}

// sqliteCodeError is implemented by modernc.org/sqlite's *Error: Code is the
// (extended) SQLite result code.
type sqliteCodeError interface {
	error
	Code() int
}

// SQLite primary result codes the store reacts to.
const (
	sqliteBusy   = 5
	sqliteLocked = 6
)

// retryable reports whether err is a transient conflict between concurrent
// transactions, after which the whole transaction may simply be run again:
// a serialization failure or detected deadlock in PostgreSQL, a busy or
// locked database in SQLite.
func (d Dialect) retryable(err error) bool {
	switch d {
	case Postgres:
		var e sqlStateError
		if errors.As(err, &e) {
			switch e.SQLState() {
			case "40001", "40P01": // serialization_failure, deadlock_detected
				return true
			}
		}
	case SQLite:
		var e sqliteCodeError
		if errors.As(err, &e) {
			switch e.Code() & 0xff {
			case sqliteBusy, sqliteLocked:
				return true
			}
		}
	}
	return false
}

// managerSet returns the query argument that matches "manager = ANY($n)" in
// PostgreSQL (an int8 array) or "manager IN (SELECT value FROM
// json_each($n))" in SQLite (a JSON array).
func (d Dialect) managerSet(ids []int64) any {
	if d == Postgres {
		return ids
	}
	var b strings.Builder
	b.Grow(len(ids)*8 + 2)
	b.WriteByte('[')
	for i, id := range ids {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(strconv.FormatInt(id, 10))
	}
	b.WriteByte(']')
	return b.String()
}
