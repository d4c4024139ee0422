package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

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
	err := s.db.QueryRowContext(ctx, `SELECT crm_customer, rule, bound_at FROM bd_bindings WHERE account = $1 AND customer = $2`,
		string(account), int64(customer)).Scan(&b.CRMCustomer, &b.Rule, timeCol{&b.At})
	if errors.Is(err, sql.ErrNoRows) {
		return store.Binding{}, fmt.Errorf("%w: customer %d has no binding", store.ErrNotFound, customer)
	}
	if err != nil {
		return store.Binding{}, wrap(err, "read the binding of customer %d", customer)
	}
	return b, nil
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
	err := s.write(ctx, func(q querier) error {
		_, err := q.ExecContext(ctx, `INSERT INTO bd_bindings AS b (account, customer, crm_customer, rule, bound_at)
			VALUES ($1, $2, $3, $4, $5)
			ON CONFLICT (account, customer) DO UPDATE
				SET crm_customer = excluded.crm_customer, rule = excluded.rule, bound_at = excluded.bound_at`,
			string(b.Account), int64(b.Customer), b.CRMCustomer, b.Rule, s.dialect.timeArg(b.At))
		return err
	})
	return wrap(err, "save the binding of customer %d", b.Customer)
}
