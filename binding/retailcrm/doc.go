// Package retailcrm is the [binding.Binder] and the [binding.Profiler] of
// a retailCRM account.
//
// [New] returns a [Binder]: it links the customer writing in a chat to a
// retailCRM customer, found by an existing link, by phone (see
// [NormalizePhone]) or by email, or created. [Pending] keeps the binds
// that failed while retailCRM was unavailable and retries them with
// backoff.
//
// [NewProfiler] returns a [Profiler]: it reads what routing uses of a
// chat customer's retailCRM customer — the personal manager (as an MG
// user id), the segments and the tags — finding the customer as the
// Binder does when it is not known yet, without creating or editing one.
// It keeps the mapping of retailCRM users to MG users for a while, so
// that a profile costs one request in the common case. The caller keeps
// profiles with the binding (store.Binding's Profile) and decides when
// to read them again.
//
// Both talk to retailCRM through package crm, so every request waits on
// the key's rate limit (10 requests per second per key, shared by every
// client of the key in the process) and throttled answers are retried
// there. Options that fit several constructors return a type that is each
// of their option types: [LookupOption] for a Binder and a Profiler,
// [CommonOption] for all three.
package retailcrm
