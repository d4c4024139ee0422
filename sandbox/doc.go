// Package sandbox runs, inside the calling process and on 127.0.0.1, fakes
// of the two services a dialog distributor talks to: a retailCRM account
// ([NewCRM], API v5 subset) and a retailCRM MessageGateway ([NewMG]: the
// Bot API subset, its websocket event stream, and the Transport API subset
// a messenger integration uses). Tests, demos and users' own tests point
// the real clients at them.
//
// # Wiring
//
//	mg, err := sandbox.NewMG(sandbox.WithSeed(1))
//	defer mg.Close()
//	crm, err := sandbox.NewCRM(sandbox.WithMGBot(mg.URL(), mg.BotToken().Reveal()))
//	defer crm.Close()
//
// The CRM's integration module edit then hands out the fake MG's endpoint
// and bot token, as a real account hands out its MG's.
//
// # The fake retailCRM
//
// API v5: GET /api/credentials, integration module get and edit, GET
// /users and /users/{id} (with mgUserId), GET /customers (filters
// mgCustomerId, name, email), GET /customers/{id} (by=id or externalId),
// POST /customers/create and /customers/{id}/edit, and the sites
// reference. A customer's card carries its personal manager (managerId),
// its segments as segment objects with a code, and its tags as tag objects
// with a name; tests set them with SetCustomerManager, SetCustomerSegments
// and SetCustomerTags. Each key may make 10 requests a second (a token
// bucket, or a sliding window with [WithSlidingWindow]); above it the
// answer is 503, retailCRM's documented one, or 429 with
// [WithThrottleStatus]. [CRM.Requests] and [CRM.Throttled] count them.
// [CRM.SetFaults] injects 5xx answers, latency and an unreachable host.
//
// # The fake MG
//
// Bot API: GET /bots, /channels, /users, /customers, /chats, /dialogs,
// /messages (bare JSON arrays, filters as documented, since_id/until_id
// cursor paging with limit 1..1000, default 100), PATCH
// /dialogs/{id}/assign and /unassign, DELETE /dialogs/{id}/close, POST
// /messages (text only), and GET /ws?events=a,b. Every call needs the
// X-Bot-Token header. Errors are {"errors":[...]} with the documented
// texts: 404 "dialog #N not found", 400 "dialog is not the latest in the
// chat", 400 "dialog is not assigned".
//
// Transport API: GET/POST /channels, PUT/DELETE /channels/{id} and POST
// /messages (customer originator), with the X-Transport-Token header, as
// mg-transport-api-client-go v1.3.19 calls them. A public message a bot or
// a manager writes into a transport channel is POSTed to the transport's
// webhook as message_sent; the transport's answer marks it sent or failed.
// Unless [WithWebhookURL] says otherwise the webhook is the sandbox's
// built-in messenger, whose receipts [MG.Delivered] lists.
//
// Events: chat_created, dialog_opened and message_new when a customer
// writes; message_new when a bot or user writes; dialog_assign on every
// change of responsible; dialog_closed; user_online_updated and
// user_updated for presence and activation; channel_updated for channel
// changes. Each event goes to every websocket subscribed to its type.
//
// Controls and inspection: AddManager, SetOnline, SetActive, AddBot,
// AddChannel, CustomerWrites (through the real transport client),
// ManagerWrites, AssignAsPerson, CloseDialog; Responsible, Dialog,
// Dialogs, Messages (one chat, or the whole log), BotMessages (what bots
// posted into a dialog, for counting replies), Users, Delivered,
// Subscribers, Requests. [MG.Await]
// waits for a condition without sleeping: it re-checks after every state
// change.
//
// Faults: [MG.SetFaults] injects 5xx and 429 answers (at seeded random
// ratios, or the next N requests), Retry-After and latency into the Bot
// API, and "applied then failed" answers (ErrAfterApply): the request
// takes effect — a message is stored and delivered — but its answer is a
// 5xx or a dropped connection, to test that replies land exactly once;
// [MG.DropWebsockets] cuts every websocket like a network failure;
// [MG.InjectFrame] sends any frame, malformed or of an unknown type.
//
// # What the fake MG does not know
//
// Where the reference facts are unverified, the sandbox picks a plausible
// behaviour and says so here: 401 with "invalid token" for a bad bot or
// transport token; since_id and until_id as exclusive bounds; 400 for a
// limit outside 1..1000, for assigning a closed dialog ("dialog is
// closed"), an inactive user or a bot without the responsible role, for
// closing a closed dialog, and for an empty events list on the websocket;
// 404 "dialog #N not found" on close (a fixture of MG's client shows 400);
// a message a bot posts while its chat has no open dialog belongs to no
// dialog; assigning the current responsible again answers as a reassignment to
// the same target and emits nothing; unassigning emits no event; the
// order chat_created, dialog_opened, message_new when a customer opens a
// dialog; "available" = online and active; a message's time is written
// with a +03:00 offset; webhooks are not retried. A slow websocket whose
// buffer of 4096 events fills up is cut rather than losing events
// silently.
package sandbox
