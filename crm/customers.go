package crm

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"net/url"
	"slices"
	"strconv"

	retailcrm "github.com/retailcrm/api-client-go/v2"
)

// Customer is a retailCRM customer (an individual), with the fields
// binding needs.
type Customer struct {
	ID         int64
	ExternalID string
	FirstName  string
	LastName   string
	Email      string
	// Phones are the numbers as stored in retailCRM, unnormalised.
	Phones []string
	// Site is the code of the store (site) the customer belongs to.
	Site string
	// MGCustomerID is the MessageGateway customer linked to this customer,
	// "" when none.
	MGCustomerID string
}

// CustomerFilter selects customers; at least one field must be set, and
// all set fields must match.
type CustomerFilter struct {
	// MGCustomerID matches the linked MessageGateway customer
	// (filter[mgCustomerId]).
	MGCustomerID string
	// Name matches the full name or a phone number (filter[name]); that it
	// matches phones by their digits, whatever their formatting, is
	// unverified: verify the phones of what comes back.
	Name string
	// Email matches the email (filter[email]); whether retailCRM matches it
	// exactly or by part is unverified: compare what comes back.
	Email string
}

// customersPageLimit is the page size of customer searches.
const customersPageLimit = 100

// FindCustomers returns the first page (up to 100) of customers matching f
// (GET /api/v5/customers), in retailCRM's order. It decodes mgCustomerId
// whether retailCRM sends it as a string or a number.
func (c *Client) FindCustomers(ctx context.Context, f CustomerFilter) ([]Customer, error) {
	const op = "customers list"
	q := url.Values{}
	if f.MGCustomerID != "" {
		q.Set("filter[mgCustomerId]", f.MGCustomerID)
	}
	if f.Name != "" {
		q.Set("filter[name]", f.Name)
	}
	if f.Email != "" {
		q.Set("filter[email]", f.Email)
	}
	if len(q) == 0 {
		return nil, &Error{Op: op, Kind: ErrRejected, Detail: "the filter is empty"}
	}
	q.Set("limit", strconv.Itoa(customersPageLimit))
	q.Set("page", "1")
	path := "/customers?" + q.Encode()
	body, err := call(ctx, c, op, func(api *retailcrm.Client) ([]byte, int, error) {
		return api.GetRequest(path)
	})
	if err != nil {
		return nil, err
	}
	var resp struct {
		Success   bool           `json:"success"`
		Customers []wireCustomer `json:"customers"`
	}
	if err := json.Unmarshal(body, &resp); err != nil {
		return nil, classify(op, 200, err, c.key)
	}
	if !resp.Success {
		return nil, &Error{Op: op, Kind: ErrBadResponse, Detail: `the answer has no "success": true`}
	}
	out := make([]Customer, 0, len(resp.Customers))
	for _, w := range resp.Customers {
		cu := Customer{
			ID:           w.ID,
			ExternalID:   string(w.ExternalID),
			FirstName:    w.FirstName,
			LastName:     w.LastName,
			Email:        w.Email,
			Site:         w.Site,
			MGCustomerID: string(w.MGCustomerID),
		}
		for _, p := range w.Phones {
			if p.Number != "" {
				cu.Phones = append(cu.Phones, p.Number)
			}
		}
		out = append(out, cu)
	}
	return out, nil
}

// NewCustomer is a customer to create.
type NewCustomer struct {
	// MGCustomerID links the new customer to a MessageGateway customer.
	MGCustomerID string
	FirstName    string
	LastName     string
	Phone        string
	Email        string
	// Site is the store (site) code; "" sends none and leaves the choice to
	// retailCRM (which store it picks then is unverified).
	Site string
}

// CreateCustomer creates a customer (POST /api/v5/customers/create) and
// returns its id. mgCustomerId is sent as a string, as the underlying
// client's Customer type has it. A request abandoned when ctx ends may
// still create the customer; search by MGCustomerID before creating again.
func (c *Client) CreateCustomer(ctx context.Context, nc NewCustomer) (int64, error) {
	const op = "customer create"
	cu := retailcrm.Customer{
		FirstName:    nc.FirstName,
		LastName:     nc.LastName,
		Email:        nc.Email,
		MgCustomerID: nc.MGCustomerID,
	}
	if nc.Phone != "" {
		cu.Phones = []retailcrm.Phone{{Number: nc.Phone}}
	}
	resp, err := call(ctx, c, op, func(api *retailcrm.Client) (retailcrm.CustomerChangeResponse, int, error) {
		return api.CustomerCreate(cu, nc.Site)
	})
	if err != nil {
		return 0, err
	}
	if !resp.Success || resp.ID == 0 {
		return 0, &Error{Op: op, Kind: ErrBadResponse, Detail: "the answer has no customer id"}
	}
	return int64(resp.ID), nil
}

// LinkCustomer sets mgCustomerId on the customer with the given id (POST
// /api/v5/customers/{id}/edit, by=id, site when not ""), linking it to a
// MessageGateway customer. That the edit method honours mgCustomerId is
// unverified against a live account.
func (c *Client) LinkCustomer(ctx context.Context, id int64, site, mgCustomerID string) error {
	const op = "customer edit"
	cu := retailcrm.Customer{ID: int(id), MgCustomerID: mgCustomerID}
	resp, err := call(ctx, c, op, func(api *retailcrm.Client) (retailcrm.CustomerChangeResponse, int, error) {
		return api.CustomerEdit(cu, retailcrm.ByID, site)
	})
	if err != nil {
		return err
	}
	if !resp.Success {
		return &Error{Op: op, Kind: ErrBadResponse, Detail: `the answer has no "success": true`}
	}
	return nil
}

// Site is a store (site) of the account (GET /api/v5/reference/sites).
type Site struct {
	Code string
	Name string
	URL  string
	// Default is the site's defaultForCrm flag.
	Default bool
}

// Sites returns the account's stores ordered by code.
func (c *Client) Sites(ctx context.Context) ([]Site, error) {
	const op = "sites reference"
	resp, err := call(ctx, c, op, func(api *retailcrm.Client) (retailcrm.SitesResponse, int, error) {
		return api.Sites()
	})
	if err != nil {
		return nil, err
	}
	if !resp.Success {
		return nil, &Error{Op: op, Kind: ErrBadResponse, Detail: `the answer has no "success": true`}
	}
	out := make([]Site, 0, len(resp.Sites))
	for code, s := range resp.Sites {
		if s.Code == "" {
			s.Code = code
		}
		out = append(out, Site{Code: s.Code, Name: s.Name, URL: s.URL, Default: s.DefaultForCRM})
	}
	slices.SortFunc(out, func(a, b Site) int { return cmp.Compare(a.Code, b.Code) })
	return out, nil
}

// wireCustomer decodes a customer leniently: ids that retailCRM versions
// send either as strings or as numbers are accepted both ways.
type wireCustomer struct {
	ID           int64      `json:"id"`
	ExternalID   flexString `json:"externalId"`
	FirstName    string     `json:"firstName"`
	LastName     string     `json:"lastName"`
	Email        string     `json:"email"`
	Site         string     `json:"site"`
	MGCustomerID flexString `json:"mgCustomerId"`
	Phones       []struct {
		Number string `json:"number"`
	} `json:"phones"`
}

// flexString accepts a JSON string, number or null.
type flexString string

func (s *flexString) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	switch {
	case bytes.Equal(b, []byte("null")):
		*s = ""
		return nil
	case len(b) > 0 && b[0] == '"':
		var v string
		if err := json.Unmarshal(b, &v); err != nil {
			return err
		}
		*s = flexString(v)
		return nil
	}
	var n json.Number
	if err := json.Unmarshal(b, &n); err != nil {
		return err
	}
	*s = flexString(n.String())
	return nil
}
