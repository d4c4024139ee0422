package crm

import (
	"context"
	"fmt"

	retailcrm "github.com/retailcrm/api-client-go/v2"
)

// User is a retailCRM user (GET /api/v5/users).
type User struct {
	ID        int
	FirstName string
	LastName  string
	Email     string
	Active    bool
	Online    bool
	IsManager bool
	// Status is the work status: "free", "busy", "dinner" or "break"; other
	// values are passed through as retailCRM sends them.
	Status string
	// MGUserID is the user's MessageGateway user id; 0 when the user has
	// no access to chats.
	MGUserID int64
}

// usersPageLimit is the page size asked for; retailCRM accepts 20, 50 or 100.
const usersPageLimit = 100

// maxPages bounds paging in case an answer's pagination never ends.
const maxPages = 1000

// Managers returns every active manager of the account (filter active=1,
// isManager=1), all pages, each page one request under the key's rate
// limit, in retailCRM's order.
func (c *Client) Managers(ctx context.Context) ([]User, error) {
	var out []User
	for page := 1; page <= maxPages; page++ {
		op := fmt.Sprintf("users list (page %d)", page)
		req := retailcrm.UsersRequest{
			Filter: retailcrm.UsersFilter{Active: 1, IsManager: 1},
			Limit:  usersPageLimit,
			Page:   page,
		}
		resp, err := call(ctx, c, op, func(api *retailcrm.Client) (retailcrm.UsersResponse, int, error) {
			return api.Users(req)
		})
		if err != nil {
			return nil, err
		}
		if !resp.Success {
			return nil, &Error{Op: op, Kind: ErrBadResponse, Detail: `the answer has no "success": true`}
		}
		for _, u := range resp.Users {
			out = append(out, userOf(u))
		}
		p := resp.Pagination
		if p == nil || p.CurrentPage >= p.TotalPageCount || len(resp.Users) == 0 {
			return out, nil
		}
	}
	return out, nil
}

// User reads one retailCRM user (GET /api/v5/users/{id}), active or not.
// It returns an error wrapping [ErrNotFound] when there is no such user.
func (c *Client) User(ctx context.Context, id int) (User, error) {
	op := "user get"
	if id <= 0 {
		return User{}, &Error{Op: op, Kind: ErrRejected, Detail: fmt.Sprintf("user id must be positive, got %d", id)}
	}
	resp, err := call(ctx, c, op, func(api *retailcrm.Client) (retailcrm.UserResponse, int, error) {
		return api.User(id)
	})
	if err != nil {
		return User{}, err
	}
	if !resp.Success || resp.User == nil {
		return User{}, &Error{Op: op, Kind: ErrBadResponse, Detail: `the answer has no "success": true and user`}
	}
	return userOf(*resp.User), nil
}

// userOf converts the API client's user.
func userOf(u retailcrm.User) User {
	return User{
		ID:        u.ID,
		FirstName: u.FirstName,
		LastName:  u.LastName,
		Email:     u.Email,
		Active:    u.Active,
		Online:    u.Online,
		IsManager: u.IsManager,
		Status:    u.Status,
		MGUserID:  int64(u.MGUserID),
	}
}
