package retailcrm_test

import (
	"context"
	"errors"
	"fmt"

	bd "github.com/botdistributor/botdistributor"
	"github.com/botdistributor/botdistributor/binding"
	"github.com/botdistributor/botdistributor/binding/retailcrm"
	"github.com/botdistributor/botdistributor/crm"
	"github.com/botdistributor/botdistributor/sandbox"
	"github.com/botdistributor/botdistributor/store/memory"
)

// Chat customers are matched to retailCRM customers by phone (whatever its
// formatting), then by email (whatever its case), and created when nothing
// matches.
func Example_phoneOrEmail() {
	account, err := sandbox.NewCRM()
	if err != nil {
		panic(err)
	}
	defer account.Close()
	account.AddCustomer(sandbox.CRMCustomer{FirstName: "Anna", Phones: []string{"8 (916) 123-45-67"}})
	account.AddCustomer(sandbox.CRMCustomer{FirstName: "Boris", Email: "Boris@Example.com"})

	client, err := crm.New(account.URL(), sandbox.CRMDefaultKey)
	if err != nil {
		panic(err)
	}
	binder, err := retailcrm.New(client, memory.New(), retailcrm.WithRegion("RU"))
	if err != nil {
		panic(err)
	}
	for _, c := range []bd.Customer{
		{ID: 101, FirstName: "Anna", Phone: "+7 916 123 45 67"},
		{ID: 102, FirstName: "Boris", Email: "boris@example.com"},
		{ID: 103, FirstName: "Vera", Phone: "+7 903 000 11 22"},
		{ID: 101, FirstName: "Anna", Phone: "+7 916 123 45 67"},
	} {
		res, err := binder.Bind(context.Background(), binding.Request{Account: "shop", Customer: c, Create: true})
		if err != nil {
			panic(err)
		}
		fmt.Printf("chat customer %d -> crm customer %d (%s)\n", c.ID, res.CRMCustomer, res.Rule)
	}
	// Output:
	// chat customer 101 -> crm customer 1 (phone)
	// chat customer 102 -> crm customer 2 (email)
	// chat customer 103 -> crm customer 3 (created)
	// chat customer 101 -> crm customer 1 (linked)
}

// A profile tells routing the customer's personal manager (as an MG user
// id), segments and tags. The retailCRM customer is found as a binder
// finds it when the binding is not known yet.
func ExampleProfiler() {
	account, err := sandbox.NewCRM()
	if err != nil {
		panic(err)
	}
	defer account.Close()
	manager := account.AddUser(sandbox.CRMUser{FirstName: "Mia", Active: true, IsManager: true, MGUserID: 501})
	account.AddCustomer(sandbox.CRMCustomer{
		FirstName: "Anna", Phones: []string{"8 (916) 123-45-67"},
		ManagerID: manager, Segments: []string{"vip"}, Tags: []string{"wholesale"},
	})

	client, err := crm.New(account.URL(), sandbox.CRMDefaultKey)
	if err != nil {
		panic(err)
	}
	profiler, err := retailcrm.NewProfiler(client, retailcrm.WithRegion("RU"))
	if err != nil {
		panic(err)
	}
	p, err := profiler.Profile(context.Background(), binding.ProfileRequest{
		Account:  "shop",
		Customer: bd.Customer{ID: 101, Phone: "+7 916 123 45 67"},
	})
	if err != nil {
		panic(err)
	}
	fmt.Printf("crm customer %d, personal manager %d, segments %v, tags %v\n", p.CRMCustomer, p.Manager, p.Segments, p.Tags)

	_, err = profiler.Profile(context.Background(), binding.ProfileRequest{
		Account:  "shop",
		Customer: bd.Customer{ID: 102, Phone: "+7 903 000 11 22"},
	})
	fmt.Println(errors.Is(err, binding.ErrNoMatch))
	// Output:
	// crm customer 1, personal manager 501, segments [vip], tags [wholesale]
	// true
}
