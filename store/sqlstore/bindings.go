package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	bd "github.com/botdistributor/botdistributor"
	"github.com/botdistributor/botdistributor/store"
)

// Binding implements [store.Bindings].
func (s *Store) Binding(ctx context.Context, account bd.AccountID, customer bd.CustomerID) (store.Binding, error) {
	switch {
	case account == "":
		return store.Binding{}, invalid("binding: account is empty")
	case customer <= 0:
		return store.Binding{}, invalid("binding: customer id must be positive, got %d", customer)
	}
	b := store.Binding{Account: account, Customer: customer}
	var profile sql.NullString
	err := s.db.QueryRowContext(ctx, `SELECT crm_customer, rule, bound_at, profile FROM bd_bindings WHERE account = $1 AND customer = $2`,
		string(account), int64(customer)).Scan(&b.CRMCustomer, &b.Rule, timeCol{&b.At}, &profile)
	if errors.Is(err, sql.ErrNoRows) {
		return store.Binding{}, fmt.Errorf("%w: customer %d has no binding", store.ErrNotFound, customer)
	}
	if err != nil {
		return store.Binding{}, wrap(err, "read the binding of customer %d", customer)
	}
	if profile.Valid {
		if err := json.Unmarshal([]byte(profile.String), &b.Profile); err != nil {
			return store.Binding{}, fmt.Errorf("sqlstore: read the profile of customer %d: %w", customer, err)
		}
		b.Profile.ReadAt = b.Profile.ReadAt.UTC()
	}
	return b, nil
}

// profileArg is the profile column's value for p: NULL when p carries no
// profile (a zero ReadAt), else p as JSON with its time in UTC to the
// microsecond, as the store keeps every time.
func profileArg(p bd.CustomerProfile) (any, error) {
	if p.ReadAt.IsZero() {
		return nil, nil
	}
	p.ReadAt = p.ReadAt.UTC().Truncate(time.Microsecond)
	doc, err := json.Marshal(p)
	if err != nil {
		return nil, err
	}
	return string(doc), nil
}

// SaveBinding implements [store.Bindings].
func (s *Store) SaveBinding(ctx context.Context, b store.Binding) error {
	switch {
	case b.Account == "":
		return invalid("save binding: account is empty")
	case b.Customer <= 0:
		return invalid("save binding: customer id must be positive, got %d", b.Customer)
	case b.CRMCustomer <= 0:
		return invalid("save binding: customer %d: CRM customer id must be positive, got %d", b.Customer, b.CRMCustomer)
	}
	profile, err := profileArg(b.Profile)
	if err != nil {
		return fmt.Errorf("sqlstore: save the binding of customer %d: encode the profile: %w", b.Customer, err)
	}
	// The SET expressions read the row as it was (b.*) and the new one
	// (excluded.*): a NULL profile keeps the stored one only for the same
	// retailCRM customer, in the same statement that writes.
	err = s.write(ctx, func(q querier) error {
		_, err := q.ExecContext(ctx, `INSERT INTO bd_bindings AS b (account, customer, crm_customer, rule, bound_at, profile)
			VALUES ($1, $2, $3, $4, $5, $6)
			ON CONFLICT (account, customer) DO UPDATE
				SET crm_customer = excluded.crm_customer, rule = excluded.rule, bound_at = excluded.bound_at,
					profile = CASE
						WHEN excluded.profile IS NOT NULL THEN excluded.profile
						WHEN b.crm_customer = excluded.crm_customer THEN b.profile
					END`,
			string(b.Account), int64(b.Customer), b.CRMCustomer, b.Rule, s.dialect.timeArg(b.At), profile)
		return err
	})
	return wrap(err, "save the binding of customer %d", b.Customer)
}

// ForgetProfiles implements [store.ProfileForgetter].
func (s *Store) ForgetProfiles(ctx context.Context, account bd.AccountID, crmCustomer int64) error {
	switch {
	case account == "":
		return invalid("forget profiles: account is empty")
	case crmCustomer <= 0:
		return invalid("forget profiles: CRM customer id must be positive, got %d", crmCustomer)
	}
	err := s.write(ctx, func(q querier) error {
		_, err := q.ExecContext(ctx, `UPDATE bd_bindings SET profile = NULL
			WHERE account = $1 AND crm_customer = $2 AND profile IS NOT NULL`, string(account), crmCustomer)
		return err
	})
	return wrap(err, "forget the profiles of CRM customer %d", crmCustomer)
}
