// Package crm is a thin, context-aware and rate-limited wrapper around the
// retailCRM API v5 client github.com/retailcrm/api-client-go/v2 (v2.1.3),
// shared by account registration ([Connect]), the manager roster
// ([Client.Roster], [JoinRoster]), customer binding and customer profiles
// (package binding/retailcrm: [Client.FindCustomers],
// [Client.CustomerCard], [Client.User]) and the feed of customer card
// changes that tells when a customer's profile is out of date
// ([Client.CustomerChanges], [ProfileField]).
//
// # Contexts
//
// The underlying client takes no context and its HTTP client cannot be
// replaced. Every call here runs the underlying request on its own goroutine
// and returns as soon as the context ends, with an error wrapping ctx.Err().
// The abandoned request may still run to completion in the background (the
// underlying client bounds it with a one-minute timeout); a create or edit
// abandoned that way may therefore still take effect in retailCRM.
//
// # Rate limit
//
// retailCRM allows 10 requests per second per API key and answers HTTP 503
// above that (429 is treated the same way). Every [Client] waits on a token
// bucket shared by all clients of the same domain and key in the process
// ([Limiters]; by default [SharedLimiters] at [DefaultRate] with a burst of
// one, so requests are spread evenly) and retries 503 and 429 answers with a
// capped exponential backoff. Limiters are keyed by a hash of domain and key;
// the key itself is never kept, logged or put in an error.
//
// # Errors
//
// Failures are returned as [*Error] values that wrap one of the sentinels
// ([ErrBadDomain], [ErrInvalidKey], [ErrMissingScopes], [ErrSiteAccess],
// [ErrNotRetailCRM], [ErrUnreachable], [ErrThrottled], [ErrUnavailable],
// [ErrAccessDenied], [ErrNotFound], [ErrRejected], [ErrBadResponse]); test them
// with errors.Is. A missing permission found by [Connect] comes as a
// [*ScopeError] naming the key sections to enable. [Temporary] tells the
// failures worth retrying later (throttling, 5xx, unreachable host) from
// the ones that need a person (wrong key, missing permissions, wrong domain).
//
// # Unverified facts
//
// Some protocol details could not be confirmed against a live account and are
// marked "unverified" where they are relied upon: the scope names
// customer_write and user_read, the HTTP status of a wrong-key answer (403 in
// the client's own fixtures), that the customers "name" filter also matches
// phone numbers by their digits, that editing a customer with
// mgCustomerId links it to a chat customer, and the customers history
// field names of the segments and the tags ("segments", "tags").
package crm
