package crm_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"

	"github.com/botdistributor/botdistributor/crm"
	"github.com/botdistributor/botdistributor/sandbox"
)

func TestCustomerCardPersonalManagerSegmentsTags(t *testing.T) {
	s := newCRM(t)
	mgr := s.AddUser(sandbox.CRMUser{FirstName: "Mia", Active: true, IsManager: true, MGUserID: 501})
	id := s.AddCustomer(sandbox.CRMCustomer{FirstName: "Ann", ManagerID: mgr,
		Segments: []string{"vip", "b2b"}, Tags: []string{"wholesale", "Early bird"}})
	plain := s.AddCustomer(sandbox.CRMCustomer{FirstName: "Bo"})
	c := newClient(t, s.URL())
	ctx := context.Background()

	card, err := c.CustomerCard(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if card.ID != id || card.ManagerID != mgr || !slices.Equal(card.Segments, []string{"vip", "b2b"}) ||
		!slices.Equal(card.Tags, []string{"wholesale", "Early bird"}) {
		t.Fatalf("CustomerCard(%d) = %+v, want manager %d, segments [vip b2b], tags [wholesale Early bird]", id, card, mgr)
	}
	card, err = c.CustomerCard(ctx, plain)
	if err != nil || card.ManagerID != 0 || card.Segments != nil || card.Tags != nil {
		t.Fatalf("CustomerCard of a customer without manager, segments or tags = %+v, %v", card, err)
	}
	_, err = c.CustomerCard(ctx, 999)
	wantIs(t, err, crm.ErrNotFound)

	u, err := c.User(ctx, mgr)
	if err != nil || u.ID != mgr || u.MGUserID != 501 || u.FirstName != "Mia" {
		t.Fatalf("User(%d) = %+v, %v; want MG user 501", mgr, u, err)
	}
	_, err = c.User(ctx, 999)
	wantIs(t, err, crm.ErrNotFound)
}

func TestCustomerCardDecodesStringSegmentsAndTags(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/api/v5/customers/5" || r.URL.Query().Get("by") != "id" {
			http.NotFound(w, r)
			return
		}
		fmt.Fprint(w, `{"success":true,"customer":{"id":5,"managerId":3,"segments":["a",{"id":1,"code":"b","name":"B"}],"tags":["x",{"name":"y","color":"red"}]}}`)
	}))
	defer srv.Close()
	card, err := newClient(t, srv.URL).CustomerCard(context.Background(), 5)
	if err != nil || card.ManagerID != 3 || !slices.Equal(card.Segments, []string{"a", "b"}) || !slices.Equal(card.Tags, []string{"x", "y"}) {
		t.Fatalf("CustomerCard = %+v, %v; want manager 3, segments [a b], tags [x y]", card, err)
	}
}
