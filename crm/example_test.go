package crm_test

import (
	"context"
	"errors"
	"fmt"

	"github.com/botdistributor/botdistributor/crm"
	"github.com/botdistributor/botdistributor/sandbox"
)

// Connecting checks the key and registers the module; a key without some
// permissions is refused with the sections to enable.
func ExampleConnect() {
	account, err := sandbox.NewCRM(sandbox.WithMGBot("https://mg.example.com", ""), sandbox.WithKeys(map[string]sandbox.CRMKey{
		"full-key":    sandbox.CRMFullAccess(),
		"limited-key": {Scopes: []string{"integration_read", "integration_write", "reference_read"}, SiteAccess: "access_full"},
	}))
	if err != nil {
		panic(err)
	}
	defer account.Close()
	module := crm.Module{BaseURL: "https://bot.example.com"}

	_, err = crm.Connect(context.Background(), account.URL(), "limited-key", module)
	var scopes *crm.ScopeError
	if errors.As(err, &scopes) {
		fmt.Println("enable:", scopes.Sections())
	}

	conn, err := crm.Connect(context.Background(), account.URL(), "full-key", module)
	if err != nil {
		panic(err)
	}
	fmt.Println("MG endpoint:", conn.MGEndpoint)
	fmt.Println("bot token:", conn.MGToken)
	// Output:
	// enable: [Customers Users]
	// MG endpoint: https://mg.example.com
	// bot token: [secret]
}
