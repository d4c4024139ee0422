package binding_test

import (
	"context"
	"errors"
	"testing"

	bd "github.com/botdistributor/botdistributor"
	"github.com/botdistributor/botdistributor/binding"
)

type fixed binding.Result

func (f fixed) Bind(context.Context, binding.Request) (binding.Result, error) {
	return binding.Result(f), nil
}

func TestAccounts(t *testing.T) {
	var a binding.Accounts
	a.Set("one", fixed{CRMCustomer: 1, Rule: binding.ByPhone})
	a.Set("two", fixed{CRMCustomer: 2, Rule: binding.ByEmail})
	res, err := a.Bind(context.Background(), binding.Request{Account: "two", Customer: bd.Customer{ID: 5}})
	if err != nil || res.CRMCustomer != 2 {
		t.Fatalf("%+v %v", res, err)
	}
	a.Set("two", nil)
	if _, err := a.Bind(context.Background(), binding.Request{Account: "two"}); !errors.Is(err, binding.ErrUnknownAccount) {
		t.Fatalf("removed account: %v", err)
	}
}
