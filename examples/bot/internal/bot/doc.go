// Package bot is the engine of the reference bot: a [Supervisor] hosts
// every connected retailCRM account through a fleet.Fleet over the store
// (one distributor per account, one worker set for the jobs of all of
// them, the event streams of the accounts whose lease this process
// holds), and keeps every account in the store so that a restart resumes
// where it stopped.
//
// The fleet builds each account with fleet.MG and the bot's own parts:
//
//   - a distributor.Distributor over the shared store, acting through
//     mgsource.Gateway (MG's "dialog gone" answers close the dialog) and
//     replying through reply.Template;
//   - an event stream, run by the process holding the account's lease:
//     an mgsource.Source feeding the account's MG websocket events and
//     re-reading users and open dialogs after every (re)connect, and
//     beside it the poller of retailCRM's managers (the account's
//     fleet.Parts.Poll), within the CRM rate limit;
//   - a roster that joins MG users with retailCRM users (status, activity)
//     between the Source and the distributor;
//   - retailcrm.Binder, whose binds are the distributor's bind jobs:
//     retried with backoff while retailCRM is unavailable.
//
// [Supervisor.Connect] registers the module in an account, stores it and
// has the fleet start it; settings, decisions and the dashboard go through
// the account's distributor in this process.
//
// Several bot processes over one PostgreSQL database share the accounts:
// each account's event stream (and CRM poller) runs in one of them,
// taken over by another within the lease TTL should it stop, and every
// process does the jobs of every account. [OpenStorage] opens PostgreSQL
// with one job queue for all accounts (sqlstore.WithSharedQueue), which
// every process of a deployment must use alike; a SQLite file serves one
// process.
//
// [OpenStorage] opens the store from a DSN: a SQLite file (modernc.org/sqlite)
// or PostgreSQL (pgx). [Metrics] counts what the distributors do for
// Prometheus and, with [Metrics.Watch], shows each account's queue, longest
// wait, open dialogs and stream as gauges. [Supervisor.Dashboard] reads an
// account at a glance; [Activity] keeps the last hour's per-minute counts.
// A new account starts with [DefaultSettings]: switched off, so nothing
// happens in it until its settings are saved switched on.
package bot
