package web

import (
	"context"
	"errors"
	"strconv"
	"strings"

	"github.com/botdistributor/botdistributor/crm"
)

// explainConnect says in plain words why connecting an account failed.
// The crm errors it builds on never contain the API key.
func explainConnect(err error) string {
	var scopes *crm.ScopeError
	var ce *crm.Error
	detail := ""
	if errors.As(err, &ce) && ce.Detail != "" {
		detail = " (" + ce.Detail + ")"
	}
	switch {
	case errors.As(err, &scopes):
		msg := "The API key lacks permissions. In retailCRM, allow all methods of these sections for the key: " +
			strings.Join(scopes.Sections(), ", ") + "."
		if errors.Is(err, crm.ErrSiteAccess) {
			msg += " The key must also have access to all stores."
		}
		return msg
	case errors.Is(err, crm.ErrSiteAccess):
		return "The API key is limited to some stores. Give it access to all stores in retailCRM."
	case errors.Is(err, crm.ErrBadDomain):
		return "The address is not valid" + detail + ". Give the account's address, e.g. https://shop.retailcrm.ru."
	case errors.Is(err, crm.ErrInvalidKey):
		return "retailCRM refused the API key: it is wrong or was deleted."
	case errors.Is(err, crm.ErrNotRetailCRM):
		return "This address is not a retailCRM account" + detail + "."
	case errors.Is(err, crm.ErrUnreachable):
		return "The address cannot be reached" + detail + ". Check it and try again."
	case errors.Is(err, crm.ErrThrottled):
		return "retailCRM is rate limiting this key right now. Try again in a minute."
	case errors.Is(err, crm.ErrUnavailable):
		return "retailCRM answered with a server error. Try again later."
	case errors.Is(err, crm.ErrAccessDenied):
		return "retailCRM denied access for this API key. Allow all methods of the sections Integration, Customers, Users and Data books."
	case errors.Is(err, context.DeadlineExceeded):
		return "retailCRM did not answer in time. Try again."
	}
	return "Connecting failed: " + err.Error()
}

// fieldLabel names a settings field (as bd.Problem.Field spells it) for
// people, in l.
func fieldLabel(l lang, field string) string {
	head, rest, _ := strings.Cut(field, ".")
	switch head {
	case "replies":
		if _, ok := english["field.replies."+rest]; ok {
			return T(l, "field.replies."+rest)
		}
		return T(l, "field.replies")
	case "capacity":
		id, _, _ := strings.Cut(rest, ".")
		return T(l, "field."+head, id)
	case "groups":
		if rest == "" {
			return T(l, "field.groupsNew")
		}
		return T(l, "field.groups", rest)
	case "channels", "default_rule":
		label := T(l, "field.default_rule")
		if head == "channels" {
			var id string
			id, rest, _ = strings.Cut(rest, ".")
			label = T(l, "field.channels", id)
		}
		// A step's field: "<rule>.steps.<index>[.group|.wait]".
		if idx, ok := strings.CutPrefix(rest, "steps."); ok {
			idx, _, _ = strings.Cut(idx, ".")
			if i, err := strconv.Atoi(idx); err == nil {
				return T(l, "field.step", label, i+1)
			}
		}
		return label
	}
	if _, ok := english["field."+head]; ok {
		return T(l, "field."+head)
	}
	return field
}
