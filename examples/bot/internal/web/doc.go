// Package web serves the reference bot's settings pages: server-rendered
// HTML (html/template, no script at all), a login form with sessions kept
// in memory, a CSRF token tied to the session on every form, and pages
// that never show an API key or a bot token.
//
// Routes:
//
//	GET  /login, POST /login, POST /logout
//	GET  /                             connected accounts and the Connect form
//	POST /connect                      connect an account (domain + API key)
//	GET  /accounts/{id}                an account and its Settings block
//	POST /accounts/{id}/settings       save settings (refused as a whole when anything is wrong)
//	GET  /accounts/{id}/decisions      recent decisions with their traces
//	GET  /healthz                      200 when the store answers
//	GET  /metrics                      Prometheus metrics
package web
