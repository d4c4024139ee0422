package crm

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strings"

	retailcrm "github.com/retailcrm/api-client-go/v2"
)

// SiteAccessFull is the siteAccess value of a key with access to all stores.
const SiteAccessFull = "access_full"

// Credentials is what retailCRM reports about an API key
// (GET /api/credentials).
type Credentials struct {
	// Scopes are the key's permissions, e.g. "customer_read".
	Scopes []string
	// SiteAccess is "access_full" (all stores) or "access_selective".
	SiteAccess string
	// Sites lists the store (site) codes the key may use.
	Sites []string
}

// Requirement is a key section and the scopes of it that the distributor
// needs.
type Requirement struct {
	// Section is the name retailCRM's key settings page shows.
	Section string
	Scopes  []string
}

// Requirements returns what the distributor needs from an API key, by key
// section, in the order they are reported:
//
//   - Integration: integration_read, integration_write (module registration)
//   - Customers: customer_read, customer_write (binding, creating customers)
//   - Users: user_read (the manager roster)
//   - Data books: reference_read (stores/sites)
//
// integration_read, integration_write, customer_read and reference_read are
// confirmed scope names; customer_write and user_read follow the same
// pattern but are unverified.
func Requirements() []Requirement {
	return []Requirement{
		{Section: "Integration", Scopes: []string{"integration_read", "integration_write"}},
		{Section: "Customers", Scopes: []string{"customer_read", "customer_write"}},
		{Section: "Users", Scopes: []string{"user_read"}},
		{Section: "Data books", Scopes: []string{"reference_read"}},
	}
}

// Credentials asks retailCRM what the client's key may do. A 404 answer, a
// non-JSON page or JSON without "success": true wraps [ErrNotRetailCRM]; a
// rejected key wraps [ErrInvalidKey].
func (c *Client) Credentials(ctx context.Context) (Credentials, error) {
	const op = "credentials check"
	resp, err := call(ctx, c, op, func(api *retailcrm.Client) (retailcrm.CredentialResponse, int, error) {
		return api.APICredentials()
	})
	if err != nil {
		var e *Error
		if errors.As(err, &e) && e.Kind == ErrNotFound && e.Status == http.StatusNotFound {
			e.Kind = ErrNotRetailCRM
			e.Detail = "it has no /api/credentials method"
		}
		return Credentials{}, err
	}
	if !resp.Success {
		return Credentials{}, &Error{Op: op, Kind: ErrNotRetailCRM, Detail: `its /api/credentials answer has no "success": true`}
	}
	return Credentials{
		Scopes:     slices.Clone(resp.Scopes),
		SiteAccess: resp.SiteAccess,
		Sites:      slices.Clone(resp.SitesAvailable),
	}, nil
}

// Check returns nil when the credentials meet reqs (nil means
// [Requirements]) and have access to all stores. Otherwise it names
// everything missing at once: a [*ScopeError] for missing scopes, an
// [*Error] wrapping [ErrSiteAccess] for limited store access, or both
// joined with errors.Join (errors.Is finds each).
func (cr Credentials) Check(reqs []Requirement) error {
	if reqs == nil {
		reqs = Requirements()
	}
	var errs []error
	var missing []Section
	for _, r := range reqs {
		var lack []string
		for _, s := range r.Scopes {
			if !slices.Contains(cr.Scopes, s) {
				lack = append(lack, s)
			}
		}
		if len(lack) > 0 {
			missing = append(missing, Section{Name: r.Section, Scopes: lack})
		}
	}
	if len(missing) > 0 {
		errs = append(errs, &ScopeError{Missing: missing})
	}
	if cr.SiteAccess != SiteAccessFull {
		detail := "enable \"access to all stores\" for the key"
		switch {
		case cr.SiteAccess == "":
			detail = "retailCRM did not report the key's store access; " + detail
		case len(cr.Sites) > 0:
			detail = "the key is limited to stores " + strings.Join(cr.Sites, ", ") + "; " + detail
		default:
			detail = "the key's store access is " + quote(cr.SiteAccess) + "; " + detail
		}
		errs = append(errs, &Error{Op: "credentials check", Kind: ErrSiteAccess, Detail: detail})
	}
	if len(errs) == 1 {
		return errs[0]
	}
	return errors.Join(errs...)
}
