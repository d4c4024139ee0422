/*
Package botdistributor distributes the customer dialogs of retailCRM's
MessageGateway (MG) between managers and bots, as the "Bot Distributor"
marketplace module does, as a library: import it into your own integration
service and plug in your own parts.

This package holds the shared domain types: [Dialog], [Customer], [Manager],
[Channel], [Responsible], [Situation], the account [Settings] and the ids.
The work is done by four pluggable parts, wired together by a
distributor.Distributor:

  - a strategy.Strategy picks a manager among the eligible ones;
  - a binding.Binder links the chat customer to a retailCRM customer
    (retailcrm.Binder, in binding/retailcrm, does so through the API);
  - a reply.Replier sends the automatic reply of each situation;
  - a store.Store keeps assignments, loads, the waiting queue, sent replies,
    processed events, bindings and accounts, and enforces capacity atomically.

# Wiring

	st := memory.New() // or sqlstore.Open(ctx, db, sqlstore.Postgres)
	mgClient, _ := mg.New(account.MGEndpoint, account.MGToken)
	replier, _ := reply.NewTemplate(mgClient) // sends through MG
	d, err := distributor.New(account.ID, st, mgsource.Gateway{MG: mgClient},
		distributor.WithStrategy(strategy.NewLeastLoaded()),
		distributor.WithReplier(replier),
		distributor.WithLogger(slog.Default()),
	)
	if err != nil { ... }
	defer d.Close() // New started the workers; Close stops them
	src, _ := mgsource.New(account.ID, mgClient, d)
	go d.Run(ctx)  // time-driven work: reassignment, queue safety net, pruning
	src.Run(ctx)   // MG events into d.Handle, resync after every reconnect

Events can also be handed over directly:

	err = d.Handle(ctx, distributor.Event{Kind: distributor.DialogOpened, Account: "shop", Dialog: dialog})

Each event — dialog opened, customer message, dialog closed, dialog assigned
by a person, manager availability changed — goes to Distributor.Handle, which
stores the work the event causes as jobs (distribute, reply, bind, move,
drain) in the same atomic step as the event's claim, and returns: the
distributor's workers do the jobs, many dialogs at once, one dialog's jobs in
order, retrying each with backoff until it is done or becomes a dead letter.
A failure of the database, of MG or of the process delays work, never drops
it. A new dialog is matched against its channel's rule (managers, or one bot); the
managers who may not take it are removed with a reason (not in the channel,
not in the roster, deactivated, offline, status, outside working hours, at
capacity); the strategy picks among the rest; the store reserves the slot
atomically; MG is told; the customer gets the "assigned" reply. When nobody
can take it, the dialog waits in the queue with the "no manager online", "all
managers busy" or "outside working hours" reply, and is assigned oldest first
as soon as a slot frees. Distributor.Decide returns the same decision as a
trace without acting.

# Strategies

Strategies are pure choices over a snapshot of candidates; they never do I/O
and never see a manager who may not take the dialog. Built-ins:
strategy.NewRoundRobin (longest since last assignment; the time comes from
the store, so it is fair across processes), strategy.NewLeastLoaded (fewest
open dialogs), strategy.NewCapped (a lower cap in front of another strategy)
and strategy.NewSticky (a returning customer's last manager first). Settings
name a strategy from an explicit strategy.Registry.

# Stores

The store is the single source of truth and the arbiter of every race: a
manager never holds more open dialogs than their capacity and a dialog never
has two responsibles, because the check and the write are one atomic step
(a mutex in store/memory, one guarded statement in store/sqlstore), also when
several processes share one PostgreSQL database. Every implementation runs
the conformance suite store/storetest.

# Replies

Each (dialog, situation) gets exactly one automatic reply, also across
restarts and processes: the reply is a job stored once per (dialog,
situation) and retried until it is sent; before sending again after an
attempt whose outcome is unknown (a timeout, a 5xx), the template replier
looks at the chat's recent bot messages to see whether it landed. A reply
that fails past its retry budget is a dead letter (Distributor.DeadLetters).

# Checking settings

Settings are validated as a whole when saved (Distributor.SaveSettings):
every problem is named in one [SettingsError], each [Problem] by its field,
with a message a settings page shows beside it. distributor.CheckSettings
checks them the same way without a Distributor, given the distributor's
options: the strategy registry, and the replier, whose reply.TextChecker,
when it has one, judges every reply text (the template replier checks its
placeholders).

# Wait alerts

[Settings].WaitAlert bounds how long the account's customers should wait in
the queue. The distributor's periodic sweep raises one alert per breach of
that bound: a log warning, the distributor.Hooks.WaitAlert hook and, with
[Settings].AlertWebhook, a JSON POST signed with [Settings].AlertSecret
(package alert, whose Verify checks the signature on the receiving side).

# Concurrency

Everything here is safe for concurrent use. Settings values are plain data:
copy them with [Settings.Clone] before changing a shared one.

# Writing your own Strategy

Implement strategy.Strategy (or wrap a function with strategy.Func), run
strategytest.Run on it, and pass it with distributor.WithStrategy or register
it by name in a strategy.Registry given to distributor.WithStrategies.
*/
package botdistributor
