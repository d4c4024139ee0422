package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"

	bd "github.com/botdistributor/botdistributor"
	"github.com/botdistributor/botdistributor/store"
)

// The credentials are kept in columns of their own, read through
// bd.Secret.Reveal: a Secret marshals to a mask, so it must never travel
// inside the settings JSON. Errors name the account, never a credential.

// SaveAccount implements [store.Accounts].
func (s *Store) SaveAccount(ctx context.Context, a bd.Account) error {
	if a.ID == "" {
		return invalid("save account: id is empty")
	}
	settings, err := json.Marshal(a.Settings)
	if err != nil {
		return fmt.Errorf("sqlstore: save account %q: encoding settings: %w", a.ID, err)
	}
	err = s.write(ctx, func(q querier) error {
		_, err := q.ExecContext(ctx, `INSERT INTO bd_accounts AS a (id, domain, api_key, mg_endpoint, mg_token, settings)
			VALUES ($1, $2, $3, $4, $5, $6)
			ON CONFLICT (id) DO UPDATE
				SET domain = excluded.domain, api_key = excluded.api_key, mg_endpoint = excluded.mg_endpoint,
					mg_token = excluded.mg_token, settings = excluded.settings`,
			string(a.ID), a.Domain, a.APIKey.Reveal(), a.MGEndpoint, a.MGToken.Reveal(), string(settings))
		return err
	})
	return wrap(err, "save account %q", a.ID)
}

const selectAccount = `SELECT id, domain, api_key, mg_endpoint, mg_token, settings FROM bd_accounts`

// scanAccount reads one row of selectAccount.
func scanAccount(sc interface{ Scan(...any) error }) (bd.Account, error) {
	var (
		a               bd.Account
		apiKey, mgToken string
		settings        []byte
	)
	if err := sc.Scan(&a.ID, &a.Domain, &apiKey, &a.MGEndpoint, &mgToken, &settings); err != nil {
		return bd.Account{}, err
	}
	a.APIKey, a.MGToken = bd.Secret(apiKey), bd.Secret(mgToken)
	if err := json.Unmarshal(settings, &a.Settings); err != nil {
		return bd.Account{}, fmt.Errorf("decoding the settings of account %q: %w", a.ID, err)
	}
	return a, nil
}

// Account implements [store.Accounts].
func (s *Store) Account(ctx context.Context, id bd.AccountID) (bd.Account, error) {
	if id == "" {
		return bd.Account{}, invalid("account: id is empty")
	}
	a, err := scanAccount(s.db.QueryRowContext(ctx, selectAccount+` WHERE id = $1`, string(id)))
	if errors.Is(err, sql.ErrNoRows) {
		return bd.Account{}, fmt.Errorf("%w: account %q", store.ErrNotFound, id)
	}
	if err != nil {
		return bd.Account{}, wrap(err, "read account %q", id)
	}
	return a, nil
}

// Accounts implements [store.Accounts]. Ids are ordered byte by byte, as Go
// compares strings, whatever the database's collation.
func (s *Store) Accounts(ctx context.Context) ([]bd.Account, error) {
	order := ` ORDER BY id`
	if s.dialect == Postgres {
		order = ` ORDER BY id COLLATE "C"`
	}
	rows, err := s.db.QueryContext(ctx, selectAccount+order)
	if err != nil {
		return nil, wrap(err, "read accounts")
	}
	defer rows.Close()
	var out []bd.Account
	for rows.Next() {
		a, err := scanAccount(rows)
		if err != nil {
			return nil, wrap(err, "read accounts")
		}
		out = append(out, a)
	}
	return out, wrap(rows.Err(), "read accounts")
}

// SaveSettings implements [store.Accounts].
func (s *Store) SaveSettings(ctx context.Context, id bd.AccountID, settings bd.Settings) error {
	if id == "" {
		return invalid("save settings: account id is empty")
	}
	js, err := json.Marshal(settings)
	if err != nil {
		return fmt.Errorf("sqlstore: save the settings of account %q: encoding: %w", id, err)
	}
	var n int64
	err = s.write(ctx, func(q querier) error {
		res, err := q.ExecContext(ctx, `UPDATE bd_accounts SET settings = $2 WHERE id = $1`, string(id), string(js))
		n, err = affected(res, err)
		return err
	})
	if err != nil {
		return wrap(err, "save the settings of account %q", id)
	}
	if n == 0 {
		return fmt.Errorf("%w: account %q", store.ErrNotFound, id)
	}
	return nil
}
