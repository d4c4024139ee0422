package crm

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"strings"

	retailcrm "github.com/retailcrm/api-client-go/v2"

	bd "github.com/botdistributor/botdistributor"
)

// Module describes the integration module registered in retailCRM with
// the mgBot integration. Only BaseURL is required.
type Module struct {
	// Code is the module's code in the account; "" means "bot-distributor".
	// It is also sent as integrationCode.
	Code string
	// Name is shown in the account's marketplace; "" means "Bot Distributor".
	Name string
	// BaseURL is the bot's public http(s) address; retailCRM calls
	// BaseURL + ActivityPath when the module is switched on or off.
	BaseURL string
	// ActivityPath is the activity callback path; "" means "/actions/activity".
	ActivityPath string
	// ClientID identifies this connection in the activity callbacks; ""
	// means one derived from the domain and Code, so registering again
	// sends the same value.
	ClientID string
	// Logo is an optional URL of the module's logo (SVG).
	Logo string
	// AccountURL is an optional address of the module's settings page.
	AccountURL string
}

// Bot is what retailCRM returns when the mgBot integration is registered:
// the MessageGateway Bot API root and the bot's token.
type Bot struct {
	// Endpoint is the MG host root, e.g. "https://mg-s1.retailcrm.pro";
	// Bot API clients append "/api/bot/v1".
	Endpoint string
	Token    bd.Secret
}

// RegisterBot registers (or updates) the integration module with the mgBot
// integration (POST /api/v5/integration-modules/{code}/edit) and returns
// the MessageGateway endpoint and bot token. It is an edit, so running it
// again with the same module is safe. It fails with [ErrBadResponse] when
// retailCRM returns no endpoint or token.
func (c *Client) RegisterBot(ctx context.Context, m Module) (Bot, error) {
	m, err := m.withDefaults(c.domain)
	if err != nil {
		return Bot{}, err
	}
	op := "module " + m.Code + " registration"
	active := true
	im := retailcrm.IntegrationModule{
		Code:            m.Code,
		IntegrationCode: m.Code,
		Active:          &active,
		Name:            m.Name,
		Logo:            m.Logo,
		ClientID:        m.ClientID,
		BaseURL:         m.BaseURL,
		AccountURL:      m.AccountURL,
		Actions:         retailcrm.StringMap{"activity": m.ActivityPath},
		Integrations:    &retailcrm.Integrations{MgBot: &retailcrm.MgBot{}},
	}
	resp, err := call(ctx, c, op, func(api *retailcrm.Client) (retailcrm.IntegrationModuleEditResponse, int, error) {
		return api.IntegrationModuleEdit(im)
	})
	if err != nil {
		return Bot{}, err
	}
	info := resp.Info.MgBotInfo
	switch {
	case !resp.Success:
		return Bot{}, &Error{Op: op, Kind: ErrBadResponse, Detail: `the answer has no "success": true`}
	case info.EndpointURL == "" || info.Token == "":
		return Bot{}, &Error{Op: op, Kind: ErrBadResponse,
			Detail: "retailCRM returned no MessageGateway endpoint or bot token; are chats enabled on the account?"}
	}
	if u, err := url.Parse(info.EndpointURL); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return Bot{}, &Error{Op: op, Kind: ErrBadResponse, Detail: "the MessageGateway endpoint " + quote(info.EndpointURL) + " is not an http(s) URL"}
	}
	return Bot{Endpoint: strings.TrimRight(info.EndpointURL, "/"), Token: bd.Secret(info.Token)}, nil
}

func (m Module) withDefaults(domain string) (Module, error) {
	if m.Code == "" {
		m.Code = "bot-distributor"
	}
	if m.Name == "" {
		m.Name = "Bot Distributor"
	}
	if m.ActivityPath == "" {
		m.ActivityPath = "/actions/activity"
	}
	if !strings.HasPrefix(m.ActivityPath, "/") {
		return m, fmt.Errorf("crm: module: activity path %q must start with /", m.ActivityPath)
	}
	for _, r := range m.Code {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.') {
			return m, fmt.Errorf("crm: module: code %q may hold only letters, digits, '-', '_' and '.'", m.Code)
		}
	}
	if m.BaseURL == "" {
		return m, errors.New("crm: module: base URL is required (the bot's public address retailCRM calls back)")
	}
	u, err := url.Parse(m.BaseURL)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return m, fmt.Errorf("crm: module: base URL %q must be an absolute http(s) URL", m.BaseURL)
	}
	m.BaseURL = strings.TrimRight(m.BaseURL, "/")
	if m.ClientID == "" {
		h := sha256.Sum256([]byte("botdistributor\x00" + domain + "\x00" + m.Code))
		m.ClientID = "bd-" + hex.EncodeToString(h[:12])
	}
	return m, nil
}

// Connection is a connected account: a ready client, what its key may do,
// and the MessageGateway bot registered for it.
type Connection struct {
	// Client is the account's client, for the roster and binding.
	Client *Client
	// Domain is the account's canonical address.
	Domain      string
	Credentials Credentials
	// Module is the registered module code.
	Module string
	// MGEndpoint is the MessageGateway root returned by retailCRM.
	MGEndpoint string
	// MGToken is the bot token returned by retailCRM.
	MGToken bd.Secret
}

// Account returns the connection as an account with the given id (its
// settings left zero), ready to store.
func (c Connection) Account(id bd.AccountID) bd.Account {
	return bd.Account{
		ID:         id,
		Domain:     c.Domain,
		APIKey:     bd.Secret(c.Client.key),
		MGEndpoint: c.MGEndpoint,
		MGToken:    c.MGToken,
	}
}

// Connect checks an account's address and API key and registers the
// module with the mgBot integration:
//
//  1. the domain is validated before any request ([ErrBadDomain]) and an
//     empty key rejected ([ErrInvalidKey]);
//  2. GET /api/credentials must list every required scope ([*ScopeError]
//     naming the key sections to enable) and siteAccess "access_full"
//     ([ErrSiteAccess]); both are reported together when both fail;
//  3. the module is registered with [Client.RegisterBot], and the returned
//     MessageGateway endpoint and token are kept.
//
// A wrong key wraps [ErrInvalidKey], an address that is not a retailCRM
// account [ErrNotRetailCRM], a host without an answer [ErrUnreachable].
// module is registered with the mgBot integration; its BaseURL is required.
// opts tune the client Connect creates (every [Option]) and the permissions
// it checks ([WithRequirements]).
//
// Running Connect again for the same account is safe: registration is an
// edit and sends the same module. Connect is safe for concurrent use.
func Connect(ctx context.Context, domain string, key bd.Secret, module Module, opts ...ConnectOption) (Connection, error) {
	cfg := connectConfig{client: defaultConfig()}
	if err := applyAll(opts, func(o ConnectOption) error { return o.applyConnect(&cfg) }); err != nil {
		return Connection{}, err
	}
	c, err := newClient(domain, key, cfg.client)
	if err != nil {
		return Connection{}, err
	}
	if _, err := module.withDefaults(c.domain); err != nil {
		return Connection{}, err
	}
	cr, err := c.Credentials(ctx)
	if err != nil {
		return Connection{}, err
	}
	if err := cr.Check(cfg.requirements); err != nil {
		return Connection{}, err
	}
	bot, err := c.RegisterBot(ctx, module)
	if err != nil {
		return Connection{}, err
	}
	code := module.Code
	if code == "" {
		code = "bot-distributor"
	}
	return Connection{
		Client:      c,
		Domain:      c.domain,
		Credentials: cr,
		Module:      code,
		MGEndpoint:  bot.Endpoint,
		MGToken:     bot.Token,
	}, nil
}
