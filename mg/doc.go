// Package mg is a client for the retailCRM MessageGateway (MG) Bot API: the
// REST subset a dialog distributor needs and the websocket event stream.
//
// # Connecting
//
// The MG endpoint and the bot token come from registering an integration
// module with retailCRM (info.mgBot.endpointUrl and info.mgBot.token).
// [New] takes the endpoint as returned, the MG host root such as
// https://mg-s1.retailcrm.pro, and appends /api/bot/v1 itself:
//
//	c, err := mg.New(endpoint, token)
//	self, err := c.SelfBot(ctx)
//
// Every request carries the X-Bot-Token header. The token is a [bd.Secret]:
// it never appears in an error, a log line or a URL.
//
// # REST calls
//
// List calls ([Client.Bots], [Client.Channels], [Client.Users],
// [Client.Customers], [Client.Chats], [Client.Dialogs], [Client.Messages])
// return one page, a bare JSON array in MG. Paging is by cursor: pass the
// largest id seen as Page.SinceID. [Client.AllDialogs] and [Client.AllUsers]
// page until a short page. Boolean filters are tri-state [Flag] values, so a
// filter such as "active dialogs that are not assigned" can be sent
// (assign=0); whether MG reads assign=0 as "unassigned only" rather than "no
// filter" is unverified, so callers should still check Dialog.IsAssigned.
//
// [Client.AssignDialog], [Client.UnassignDialog], [Client.CloseDialog] and
// [Client.SendMessage] change state. The methods [Client.Assign],
// [Client.DialogOpen], [Client.Send] and [Client.HasSent] have the shapes
// of the distributor's Gateway and DialogChecker ports and of reply.Sender
// and reply.Checker; [Accounts] routes them to one Client per account.
//
// Whether a dialog can still be assigned is read from MG's state with
// [Client.DialogStatus] (the dialog's is_active, and whether it is its
// chat's last_dialog), never from the wording of an error answer, which the
// Bot API does not fix.
//
// # Errors, rate limiting and retries
//
// A non-2xx answer is an [*APIError] carrying the status and MG's
// {"errors":[...]} list; test it with errors.Is against [ErrNotFound],
// [ErrUnauthorized], [ErrRateLimited], [ErrUnavailable],
// [ErrDialogNotLatest] or [ErrDialogNotAssigned]. A Client waits on a token
// bucket before each request ([DefaultRate], [DefaultBurst]; MG documents no
// Bot API limit, so the default is a conservative guess). Idempotent calls
// (every GET, and PATCH assign, which is idempotent for the same target) are
// retried on 429 and 5xx and on network errors with capped exponential
// backoff and jitter, honouring Retry-After; see [RetryPolicy]. Calls that
// are not safe to repeat, sending a message above all, are retried only on
// 429 and 503, which mean MG did not apply them (at most 3 attempts and 10s
// of waiting by default); when the Client gives up, [RetryAfter] tells the
// caller MG's delay. Any other failure after which MG may have applied such
// a call wraps [ErrAmbiguous] and is not retried, as a lost answer could
// otherwise post a text twice: [Client.HasSent] tells whether the message
// landed, so that a reply reaches the customer exactly once.
//
// # Event stream
//
// [Client.Stream] returns a [Stream] whose Run connects to
// /api/bot/v1/ws?events=..., decodes each frame with [DecodeEvent] into a
// typed payload and hands it to a handler, one at a time in arrival order.
// MG's stream has no acknowledgement, sequence number or replay: events sent
// while disconnected are lost. Run therefore reconnects with capped
// exponential backoff ([WithBackoff]) and calls the [WithOnConnect]
// function after every connect, before any event of that connection is
// handled, so the caller can re-read state over REST. Unknown event types and malformed frames are reported and skipped,
// never fatal. Pings ([WithPingInterval]) and a read deadline (nothing
// received for [WithReadTimeout]) detect half-open connections.
//
// # What is verified
//
// Paths, shapes, the header and the error body follow retailCRM's own bot
// client and OpenAPI/AsyncAPI specs. Not documented anywhere and therefore
// unverified: the Bot API's rate limit and throttling status (429 is assumed,
// as on MG's Transport API), 401/403 for a bad token, whether since_id is
// exclusive (the pager tolerates either), server ping intervals and idle
// timeouts on the websocket, and whether MG answers client pings (RFC 6455
// requires it).
package mg
