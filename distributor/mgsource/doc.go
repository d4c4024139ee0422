// Package mgsource runs a distributor on retailCRM MessageGateway: it feeds
// a [distributor.Distributor] (or any [Target]) with the events of one
// account's MG websocket stream, and re-reads users and open dialogs over
// REST after every (re)connect.
//
// The pieces fit like this:
//
//	client, _ := mg.New(account.MGEndpoint, account.MGToken)
//	replier, _ := reply.NewTemplate(client)             // replies via POST /messages
//	d, _ := distributor.New(account.ID, st, mgsource.Gateway{MG: client}, distributor.WithReplier(replier))
//	defer d.Close()
//	src, _ := mgsource.New(account.ID, client, d)
//	go d.Run(ctx)
//	err := src.Run(ctx)                                 // until ctx ends
//
// When MG refuses an assignment, [Gateway] reads the dialog's state (GET
// /dialogs, the chat's latest dialog) rather than the wording of the error,
// and marks dialogs that can never be assigned again (missing, closed, not
// the latest of their chat) so the distributor closes them instead of
// letting them wait. An event the distributor cannot store yet (its
// database is briefly unreachable) is offered again with backoff for
// [WithDeliverFor], not dropped. Each account has its own Client,
// Gateway, Distributor and Source (package fleet hosts many accounts).
//
// [Translator] holds the mapping from MG events to distributor events; it
// is exported so that other event sources (a recorded stream, a test) can
// reuse it.
//
// The roster is built from MG users alone: technical accounts are left
// out, and every manager's status is free unless [WithStatus] says
// otherwise. MG knows no retailCRM status; joining the CRM users (status,
// groups) is done by the caller, which passes the status through
// [WithStatus].
package mgsource
