// Package retailcrm is the [binding.Binder] of a retailCRM account: [New]
// links the customer writing in a chat to a retailCRM customer, found by
// an existing link, by phone (see [NormalizePhone]) or by email, or
// created. [Pending] keeps the binds that failed while retailCRM was
// unavailable and retries them with backoff.
package retailcrm
