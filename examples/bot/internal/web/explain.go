package web

import (
	"context"
	"errors"
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

// situationLabels name the automatic replies as the page shows them.
var situationLabels = map[string]string{
	"dialog_received":       "Reply when a dialog is received",
	"manager_assigned":      "Reply when a manager is assigned",
	"no_manager_online":     "Reply when no manager is online",
	"all_managers_busy":     "Reply when all managers are busy",
	"outside_working_hours": "Reply outside working hours",
}

// fieldLabel names a settings field (as bd.Problem.Field spells it) for
// people.
func fieldLabel(field string) string {
	head, rest, _ := strings.Cut(field, ".")
	switch head {
	case "replies":
		if l, ok := situationLabels[rest]; ok {
			return l
		}
		return "Automatic reply"
	case "managers":
		return "Managers in the distribution"
	case "default_capacity":
		return "Maximum open dialogs per manager"
	case "capacity":
		return "Maximum open dialogs of manager " + rest
	case "strategy":
		return "Strategy"
	case "availability":
		return "Availability"
	case "reassign":
		return "Reassignment"
	case "reassign_after":
		return "Reassign unanswered dialogs after"
	case "auto_create":
		return "Create customers automatically"
	case "auto_bind":
		return "Bind customers automatically"
	case "hours":
		return "Working hours"
	case "presence_grace":
		return "Presence grace"
	case "channels":
		id, _, _ := strings.Cut(rest, ".")
		return "Channel " + id
	case "default_rule":
		return "Default channel rule"
	case "shifts":
		return "Shift"
	case "leave":
		return "Leave"
	}
	return field
}
