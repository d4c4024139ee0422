package crm

import (
	"net/url"
	"strings"
)

// ParseDomain checks a retailCRM account address and returns it in canonical
// form: scheme and lower-case host, no trailing slash, e.g.
// "https://shop.retailcrm.ru". A bare host ("shop.retailcrm.ru") means
// https. The scheme must be http or https; user info, a path (other than
// "/"), a query and a fragment are rejected. The error wraps [ErrBadDomain]
// and names the problem.
//
// ParseDomain makes no request; it is safe for concurrent use.
func ParseDomain(raw string) (string, error) {
	s := strings.TrimSpace(raw)
	bad := func(why string) (string, error) {
		return "", &Error{Op: "address " + quote(s), Kind: ErrBadDomain, Detail: why}
	}
	if s == "" {
		return bad("it is empty")
	}
	if !strings.Contains(s, "://") {
		s = "https://" + s
	}
	u, err := url.Parse(s)
	if err != nil {
		return bad("it cannot be parsed as a URL")
	}
	switch strings.ToLower(u.Scheme) {
	case "https", "http":
	default:
		return bad("the scheme must be https or http, not " + quote(u.Scheme))
	}
	switch {
	case u.User != nil:
		return bad("it must not contain a user name or password")
	case u.Hostname() == "":
		return bad("it has no host")
	case u.Path != "" && u.Path != "/":
		return bad("it must not contain a path (" + quote(u.Path) + "); give only the account's address")
	case u.RawQuery != "" || u.ForceQuery:
		return bad("it must not contain a query")
	case u.Fragment != "":
		return bad("it must not contain a fragment")
	case strings.ContainsAny(u.Host, " \t"):
		return bad("the host must not contain spaces")
	}
	if p := u.Port(); p != "" {
		for _, r := range p {
			if r < '0' || r > '9' {
				return bad("the port must be a number")
			}
		}
	}
	return strings.ToLower(u.Scheme) + "://" + strings.ToLower(u.Host), nil
}

func quote(s string) string { return `"` + s + `"` }
