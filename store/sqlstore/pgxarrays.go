package sqlstore

import (
	"database/sql"
	"reflect"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/lib/pq"
)

// River's database/sql driver passes its array parameters (a job batch's
// ids, kinds, queues, arguments, times...) as lib/pq array values. With the
// pgx driver behind database/sql, pgx encodes such a value through its
// driver.Valuer: lib/pq writes the array as text, pgx parses that text back
// and encodes it again, which made inserting jobs most of the CPU a
// distribution cost in this process. tunePgx teaches a pgx connection's type
// map to take the slice inside the lib/pq value and encode it directly; the
// values sent do not change.

// tunePgx registers encodePQArray on the pgx connection behind conn, once;
// a connection of another driver is left alone.
func tunePgx(conn *sql.Conn) error {
	return conn.Raw(func(dc any) error {
		c, ok := dc.(interface{ Conn() *pgx.Conn })
		if !ok {
			return nil
		}
		m := c.Conn().TypeMap()
		if len(m.TryWrapEncodePlanFuncs) > 0 && reflect.ValueOf(m.TryWrapEncodePlanFuncs[0]).Pointer() == encodePQArrayPointer {
			return nil
		}
		m.TryWrapEncodePlanFuncs = append([]pgtype.TryWrapEncodePlanFunc{encodePQArray}, m.TryWrapEncodePlanFuncs...)
		// Registering a type again drops the encode plans the map already
		// chose for these values (through their driver.Valuer).
		if t, ok := m.TypeForName("text"); ok {
			m.RegisterType(t)
		}
		return nil
	})
}

var encodePQArrayPointer = reflect.ValueOf(encodePQArray).Pointer()

// encodePQArray is a pgtype.TryWrapEncodePlanFunc: it unwraps the lib/pq
// array values River's database/sql driver builds to the slices inside.
func encodePQArray(value any) (pgtype.WrappedEncodePlanNextSetter, any, bool) {
	if inner, ok := pqArrayElems(value); ok {
		return &pqArrayPlan{}, inner, true
	}
	return nil, nil, false
}

// pqArrayElems returns the slice inside a lib/pq array value, for the types
// pq.Array makes.
func pqArrayElems(value any) (any, bool) {
	switch v := value.(type) {
	case *pq.StringArray:
		return []string(*v), true
	case *pq.Int64Array:
		return []int64(*v), true
	case *pq.Int32Array:
		return []int32(*v), true
	case *pq.ByteaArray:
		return [][]byte(*v), true
	case *pq.BoolArray:
		return []bool(*v), true
	case *pq.Float64Array:
		return []float64(*v), true
	case pq.GenericArray:
		switch a := v.A.(type) {
		case []time.Time, []int16, []string, []int64, []int32, [][]byte, []bool:
			return a, true
		}
	}
	return nil, false
}

// pqArrayPlan encodes a lib/pq array value as the slice inside it.
type pqArrayPlan struct{ next pgtype.EncodePlan }

func (p *pqArrayPlan) SetNext(next pgtype.EncodePlan) { p.next = next }

func (p *pqArrayPlan) Encode(value any, buf []byte) ([]byte, error) {
	inner, _ := pqArrayElems(value)
	return p.next.Encode(inner, buf)
}
