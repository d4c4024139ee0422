// Package distributor decides who answers each MessageGateway dialog and
// carries the decision out: the [Distributor] wires a strategy, a binder, a
// replier and a store with an MG [Gateway].
//
// # One Distributor per account
//
// A Distributor serves one retailCRM account: [New] takes the account's id,
// and its roster, settings, traces, dead letters and workers are that
// account's. A service hosting many accounts runs one Distributor (with the
// account's own MG client as its Gateway and replier) per account over one
// shared store, which is multi-tenant; package fleet does that hosting,
// and on PostgreSQL shares the accounts among processes.
//
// # Activation
//
// An account whose settings are not active (bd.Settings.Active, off by
// default) is not distributed: its events are still accepted, a dialog
// that opens waits in the queue silently (reason [ReasonInactive]), and no
// reply, assignment or move happens. Saving active settings drains the
// queue: those dialogs are assigned oldest first and greeted then, or told
// once why they wait (activation.go).
//
// # The work pipeline
//
// [Distributor.Handle] accepts an event by storing the work it causes and
// returns; it never waits on MessageGateway. The work items are jobs of the
// store's [store.Jobs] role:
//
//   - distribute: decide for a new dialog, reserve the slot atomically, tell
//     MG (the one MG round trip on an assignment's path), or queue it;
//   - reply: send the automatic reply of one situation, exactly once (an
//     assigned dialog's greeting and "manager assigned" reply go as one job,
//     in that order);
//   - bind: link the customer to a retailCRM customer;
//   - move: reassign a dialog away from a manager;
//   - drain: hand free slots to waiting dialogs, oldest first.
//
// Jobs are stored in the same atomic step as the store change that causes
// them (the event's claim, a reservation, a close, an enqueue), so an event
// counts as handled only once its work is recorded. Workers started by [New]
// and stopped by [Distributor.Close] do the jobs: up to WorkOptions.Workers
// at once in this process (and more in every other process sharing a SQL
// store), one dialog's jobs one at a time. A failed job is retried with
// backoff; one that fails past its retry budget becomes a dead letter
// ([Distributor.DeadLetters], Hooks.Dead). A process that dies mid-job
// leaves the job to be taken up again; each job is idempotent, and a
// distribution that reserved a dialog but never told MG finishes on retry.
//
// Replies reach the customer once: a reply job exists at most once per
// (dialog, situation), and on a retry the replier is told (reply.Request's
// Attempt) so that it can check whether an attempt with an unknown outcome
// landed before sending again. The "manager assigned" reply is stored only
// once MG took the assignment; so is the greeting of a dialog assigned at
// once, in the same job (store.Job.First), while a dialog that waits is
// greeted with its queueing. Each reply keeps its own claim, whichever job
// carries it.
//
// When MG refuses an assignment, the Gateway says whether the dialog is gone
// (closed, or no longer the latest of its chat: an error wrapping
// [ErrDialogGone], learned from MG's state of the dialog); a gone dialog is
// closed, any other waits in the queue and the queue is drained for it again
// a moment later. A refused move gives the dialog back to its manager when
// they have room, and queues it otherwise.
//
// [Distributor.Resync] and the periodic [Distributor.Sweep] are safety nets
// for events that never reached Handle (a websocket drop): correctness does
// not rest on them.
//
// # Decisions
//
// A decision filters the channel's managers (with a reason for each one
// removed), asks the strategy, and reserves the slot in one conditional
// store write, choosing again while chosen managers fill up concurrently;
// distribution, the drain and reassignment share that reserve loop and one
// finishing path. The loads, the queue's length and the customer's last
// manager are read together where the store can ([store.DecisionReader]).
// Over a store where assignments to one manager wait for one another
// ([store.Contended], PostgreSQL), a new assignment does not queue behind
// another one in flight to the same manager: that manager is passed over
// (Trace.Passed) and the strategy asked again, and waited for only when
// nobody else is left. [Distributor.Decide] returns the same decision as a
// [Trace] without acting.
//
// # Routing with what retailCRM knows
//
// A channel rule with steps (bd.ChannelRule.Steps) offers a dialog to one
// group of managers (bd.Settings.Groups), or to everyone, for the step's
// wait, then to the next step's, and so on; a bot may take the last step.
// The step follows from how long the dialog has waited, so every decision
// (a new dialog, the drain, a reassignment) draws from the right group;
// the distributor sets a timer for the next step's end and drains then
// (the sweep is the safety net). With bd.Settings.PersonalManager, the
// customer's personal manager from retailCRM takes the dialog when they
// may, or the dialog waits for them (PersonalWait) before the rule's
// steps begin; bd.Settings.PrioritySegments and PriorityTags put customers
// ahead in the queue. The customer's card comes from a [binding.Profiler]
// ([WithProfiler]) within a bound, is kept with the customer's binding,
// and is read again when it ages or changes ([Distributor.CardChanged]).
// The strategy named "strict_order" takes managers in the order the admin
// listed them. Traces say which step a dialog is at, whom it waits for
// and how the card was read.
//
// # Wait alerts
//
// With bd.Settings.WaitAlert positive, every [Distributor.Sweep] (so every
// WithSweep interval under [Distributor.Run], or package fleet's sweep)
// compares the longest wait of the account's queue — the wait of the dialog
// open longest (store.Waiting.Since), wherever the queue's priorities put
// it — with that bound, on the distributor's clock ([WithClock]). When it
// first passes the bound the distributor raises a [WaitAlert] once: a
// warning in the log, [Hooks].WaitAlert, and, with bd.Settings.AlertWebhook
// set, a signed POST of package alert's JSON body to it. No further alert
// follows while the breach lasts; a new one comes only after the longest
// wait fell back to the bound or below (or the queue emptied, or the
// account was switched off) and passed it again. The breach is remembered
// in the process: a restarted process alerts again for a breach still
// going on, and two processes sweeping one account (not so under package
// fleet, where one process holds the account) alert each.
//
// The post runs in a goroutine of the distributor's, never delaying the
// sweep; it is retried on network errors, 429 and 5xx for up to a minute,
// and [Distributor.Close] waits for it, cutting it short after a few
// seconds. A failed post is logged and reported to Hooks.Failed as "alert
// webhook"; the alert is not sent again.
package distributor
