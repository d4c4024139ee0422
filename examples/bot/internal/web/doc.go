// Package web serves the reference bot's settings pages: server-rendered
// HTML (html/template) in English and Russian (i18n.go holds every string
// of both), one small script of its own (placeholder buttons, the reply
// preview, the dashboard's refresh; the pages work without it), a login
// form with sessions kept in memory and throttled per client address, a
// CSRF token tied to the session on every form, and pages that never show
// an API key or a bot token.
//
// Routes:
//
//	GET  /login, POST /login, POST /logout
//	GET  /                             connected accounts and the Connect form
//	POST /connect                      connect an account (domain + API key)
//	GET  /accounts/{id}                an account and its Settings block
//	POST /accounts/{id}/settings       save settings (refused as a whole when anything is wrong);
//	                                   with "edit" (add, move, remove a step or a group), show the changed form unsaved
//	GET  /accounts/{id}/decisions      recent decisions in words, filterable by dialog and manager
//	GET  /accounts/{id}/dashboard      the account at a glance (its /live part refreshes it)
//	GET  /lang?to=ru&back=/path        switch the language
//	GET  /healthz                      200 when the store answers
//	GET  /metrics                      Prometheus metrics, behind the login or basic auth
package web
