package retailcrm

import (
	"cmp"
	"context"
	"slices"
	"strconv"
	"strings"

	"github.com/nyaruka/phonenumbers"

	bd "github.com/botdistributor/botdistributor"
	"github.com/botdistributor/botdistributor/binding"
	"github.com/botdistributor/botdistributor/crm"
)

// finder is the customer search both a [Binder] and a [Profiler] use.
type finder interface {
	FindCustomers(ctx context.Context, f crm.CustomerFilter) ([]crm.Customer, error)
}

// match is a retailCRM customer found for a chat customer and the rule
// that found it; a zero rule means nothing matched.
type match struct {
	customer crm.Customer
	rule     binding.Rule
}

// find looks for the retailCRM customer of chat customer c without
// changing anything in retailCRM: the customer whose mgCustomerId is c's
// id ([binding.ByLink]), else one with c's phone normalised in region
// ([binding.ByPhone]), else one with c's email compared case-insensitively
// ([binding.ByEmail]); the lowest id wins among several. Nothing matching
// is a zero match and no error; a failed search returns its step's name
// with the error.
func find(ctx context.Context, f finder, region string, c bd.Customer) (match, string, error) {
	mgID := strconv.FormatInt(int64(c.ID), 10)
	found, err := f.FindCustomers(ctx, crm.CustomerFilter{MGCustomerID: mgID})
	if err != nil {
		return match{}, "search by link", err
	}
	if cu, ok := lowest(found, func(cu crm.Customer) bool { return cu.MGCustomerID == mgID }); ok {
		return match{cu, binding.ByLink}, "", nil
	}

	if num, err := parsePhone(c.Phone, region); err == nil {
		e164 := phonenumbers.Format(num, phonenumbers.E164)
		found, err := f.FindCustomers(ctx, crm.CustomerFilter{Name: phonenumbers.GetNationalSignificantNumber(num)})
		if err != nil {
			return match{}, "search by phone", err
		}
		if cu, ok := lowest(found, func(cu crm.Customer) bool { return hasPhone(cu, e164, region) }); ok {
			return match{cu, binding.ByPhone}, "", nil
		}
	}

	email := strings.TrimSpace(c.Email)
	if plausibleEmail(email) {
		found, err := f.FindCustomers(ctx, crm.CustomerFilter{Email: email})
		if err != nil {
			return match{}, "search by email", err
		}
		if cu, ok := lowest(found, func(cu crm.Customer) bool { return strings.EqualFold(strings.TrimSpace(cu.Email), email) }); ok {
			return match{cu, binding.ByEmail}, "", nil
		}
	}
	return match{}, "", nil
}

// hasPhone reports whether one of the customer's phones, read in region,
// normalises to e164.
func hasPhone(cu crm.Customer, e164, region string) bool {
	for _, p := range cu.Phones {
		if n, err := NormalizePhone(p, region); err == nil && n == e164 {
			return true
		}
	}
	return false
}

// lowest returns the customer with the lowest id among those that ok accepts.
func lowest(cs []crm.Customer, ok func(crm.Customer) bool) (crm.Customer, bool) {
	cs = slices.DeleteFunc(slices.Clone(cs), func(c crm.Customer) bool { return !ok(c) })
	if len(cs) == 0 {
		return crm.Customer{}, false
	}
	return slices.MinFunc(cs, func(a, b crm.Customer) int { return cmp.Compare(a.ID, b.ID) }), true
}

// plausibleEmail is a light check: something@something, no spaces.
func plausibleEmail(s string) bool {
	at := strings.IndexByte(s, '@')
	return at > 0 && at < len(s)-1 && !strings.ContainsAny(s, " \t\r\n")
}
