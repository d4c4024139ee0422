// Package bot is the engine of the reference bot: a [Supervisor] runs one
// distributor per connected retailCRM account, with its MessageGateway
// client, event stream, manager roster and customer binder, and keeps
// every account in a SQL store so that a restart resumes where it stopped.
//
// The pieces per account, all owned by the Supervisor's Run goroutine:
//
//   - a distributor.Distributor over the shared store, acting through
//     mgsource.Gateway (MG's "dialog gone" answers close the dialog) and
//     replying through reply.Template;
//   - an mgsource.Source feeding it the account's MG websocket events and
//     re-reading users and open dialogs after every (re)connect;
//   - a roster that joins MG users with retailCRM users (status, activity),
//     polled within the CRM rate limit;
//   - binding.RetailCRM, whose binds are the distributor's bind jobs:
//     retried with backoff while retailCRM is unavailable.
//
// [OpenStorage] opens the store from a DSN: a SQLite file (modernc.org/sqlite)
// or PostgreSQL (pgx). [Metrics] counts what the distributors do for
// Prometheus and, with [Metrics.Watch], shows each account's queue, longest
// wait, open dialogs and stream as gauges. [Supervisor.Dashboard] reads an
// account at a glance; [Activity] keeps the last hour's per-minute counts.
// A new account starts with [DefaultSettings]: switched off, so nothing
// happens in it until its settings are saved switched on.
package bot
