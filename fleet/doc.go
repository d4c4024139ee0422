// Package fleet hosts many accounts in one process, and shares them among
// processes on one database.
//
// A [Fleet] reads the accounts from the store and, for each, builds its
// parts with a [BuildFunc] (how it reaches MessageGateway, its replier,
// binder and event stream; [MG] builds them for MessageGateway) and a
// Distributor. Every [DefaultRescan] it reads them again: a new account
// starts, changed settings are put in force (Distributor.Reload, no work
// lost: the jobs are in the store), changed credentials rebuild the
// account and restart its stream, and a removed account stops.
//
//	f, err := fleet.New(st,
//		fleet.WithBuild(fleet.MG()),
//		fleet.WithDistributor(distributor.WithLogger(log)),
//	)
//	err = f.Run(ctx) // until ctx ends
//
// A service that adds an account saves it in the store and calls
// [Fleet.Await], which has the fleet rescan and reports whether the
// account started; [Fleet.Ready] waits until its stream runs here and has
// resynced. [Fleet.Distributor] and [Fleet.Value] give what was built for
// an account (its distributor; whatever the build kept in Parts.Value,
// e.g. its clients), for a settings page or a decision's explanation.
//
// # Streams and leases
//
// An account's event stream (its MG websocket, with the resync after
// every connect) and its Distributor's sweep run in one process at a
// time: the holder of the account's lease ([store.Leases]; store/memory
// and store/sqlstore keep them). Each process is a member: every quarter
// of the lease TTL ([DefaultLeaseTTL]) one lease round renews its leases
// and takes free ones until it holds its share, ceil(accounts / live
// members); a process holding more than its share (another one joined)
// stops the extras' streams and releases them, which the newcomer takes
// at its next round. A process that dies stops renewing: its leases lapse
// after the TTL by the database's clock, and the others take its
// accounts over at their next round, within the TTL and a heartbeat of
// its last renewal, and resync them as their streams connect.
//
// Two processes never run one account's stream at once: a process stops
// a stream when three quarters of the TTL have passed since the start of
// its last successful round (on its own clock), before the lease can
// lapse from any other process's view (a round still waiting for the
// database then gives up, so that the stop is not delayed by it); and it
// releases a lease only after the stream stopped. With SQLite or the memory store one process holds
// every account (several fleets in one process share them as processes
// would).
//
// # Work
//
// The jobs of every account are done by every process, whether or not it
// holds the account's stream: one worker set per process ([WithWork])
// takes the jobs of all accounts and hands each to its account's
// Distributor (built [distributor.WithoutWorkers], jobs given with
// Distributor.Do). Adding a process adds workers. A job of an account
// this process does not run yet waits for it briefly and is otherwise
// retried later; a job of an account gone from the store is dropped.
//
// A decision needs the account's roster, which a Distributor learns from
// the stream. For an account whose stream runs in another process the
// fleet reads it with Parts.Roster (for [MG]: the MG users) before the
// account's first job here, and again when it is older than
// [WithRosterRefresh] (2 s by default): such a process learns of a
// manager going offline up to that late, where the stream's process
// learns of it at once.
//
// What the stream does not bring, e.g. the managers' statuses kept in a
// CRM, Parts.Poll reads: in the process running the stream, before it
// starts and every [WithPoll] beside it.
//
// On the SQL store, open it with [sqlstore.WithSharedQueue] for a fleet:
// River polls each queue it works, and per-account queues would cost a
// poll per account every 25 ms, idle or not.
//
// # Cost
//
// An account not held by this process costs its Distributor and its
// parts (clients), and no goroutine. A held account runs one goroutine
// for its stream and the stream's own (an mgsource.Source: the websocket
// reader and the periodic resync; its MG client's idle keep-alive
// connection has two more), and one more with a Parts.Poll; one sweeper
// goroutine sweeps every account held ([WithSweep]), where
// Distributor.Run would take one per account.
// BENCHMARKS.md ("Fleet") has the figures.
//
// Run owns every goroutine the fleet starts; they have all exited when it
// returns. [Fleet.Accounts] and [Fleet.Account] report each account's
// state (running, holder, connected, the stream's counts, last event and
// resync, queue length, dead letters, and its problems: the last failure
// of each part not since recovered), and [Hooks] expose the builds,
// holding changes, lease rounds and failures to metrics.
//
// [sqlstore.WithSharedQueue]: https://pkg.go.dev/github.com/botdistributor/botdistributor/store/sqlstore#WithSharedQueue
package fleet
