package crm

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strconv"

	retailcrm "github.com/retailcrm/api-client-go/v2"
)

// CustomerCard is the part of a customer's card that routing uses: the
// personal manager, the segments and the tags.
type CustomerCard struct {
	ID int64
	// ManagerID is the customer's personal manager (managerId), a
	// retailCRM user id; 0 when the customer has none.
	ManagerID int
	// Segments are the codes of the segments the customer is in, in
	// retailCRM's order.
	Segments []string
	// Tags are the names of the customer's tags, in retailCRM's order.
	Tags []string
}

// CustomerCard reads the customer with the given retailCRM id (GET
// /api/v5/customers/{id}?by=id). It returns an error wrapping
// [ErrNotFound] when there is no such customer.
//
// Segments are read as retailCRM's segment objects ({"id", "code",
// "name", ...}) and tags as tag objects ({"name", "color", ...}); plain
// strings are accepted for both. That a customer's card lists its
// segments this way is taken from the API reference and unverified
// against a live account.
func (c *Client) CustomerCard(ctx context.Context, id int64) (CustomerCard, error) {
	op := "customer get"
	if id <= 0 {
		return CustomerCard{}, &Error{Op: op, Kind: ErrRejected, Detail: fmt.Sprintf("customer id must be positive, got %d", id)}
	}
	path := "/customers/" + strconv.FormatInt(id, 10) + "?by=id"
	body, err := call(ctx, c, op, func(api *retailcrm.Client) ([]byte, int, error) {
		return api.GetRequest(path)
	})
	if err != nil {
		return CustomerCard{}, err
	}
	var resp struct {
		Success  bool `json:"success"`
		Customer *struct {
			ID        int64         `json:"id"`
			ManagerID int           `json:"managerId"`
			Segments  []namedObject `json:"segments"`
			Tags      []namedObject `json:"tags"`
		} `json:"customer"`
	}
	if err := json.Unmarshal(body, &resp); err != nil {
		return CustomerCard{}, classify(op, 200, err, c.key)
	}
	if !resp.Success || resp.Customer == nil {
		return CustomerCard{}, &Error{Op: op, Kind: ErrBadResponse, Detail: `the answer has no "success": true and customer`}
	}
	w := resp.Customer
	card := CustomerCard{ID: w.ID, ManagerID: w.ManagerID}
	if card.ID == 0 {
		card.ID = id
	}
	for _, s := range w.Segments {
		if s.code != "" {
			card.Segments = append(card.Segments, s.code)
		}
	}
	for _, t := range w.Tags {
		if t.name != "" {
			card.Tags = append(card.Tags, t.name)
		}
	}
	return card, nil
}

// namedObject decodes a segment or a tag: an object with "code" and
// "name", or a bare string taken as both.
type namedObject struct {
	code, name string
}

func (o *namedObject) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if len(b) > 0 && b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		o.code, o.name = s, s
		return nil
	}
	var v struct {
		Code string `json:"code"`
		Name string `json:"name"`
	}
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	o.code, o.name = v.Code, v.Name
	return nil
}
