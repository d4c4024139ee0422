package botdistributor

import "log/slog"

// Secret holds a credential (a CRM API key, an MG bot token). It prints,
// logs and marshals as a mask, so it cannot leak by accident; call Reveal
// only where the value is sent to its owner's API.
type Secret string

const mask = "[secret]"

// Reveal returns the credential itself.
func (s Secret) Reveal() string { return string(s) }

// String implements fmt.Stringer with a mask.
func (s Secret) String() string {
	if s == "" {
		return ""
	}
	return mask
}

// GoString implements fmt.GoStringer with a mask.
func (s Secret) GoString() string { return s.String() }

// LogValue implements slog.LogValuer with a mask.
func (s Secret) LogValue() slog.Value { return slog.StringValue(s.String()) }

// MarshalText implements encoding.TextMarshaler with a mask, so JSON and
// text encodings never carry the credential.
func (s Secret) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// Account is one connected retailCRM account with its MessageGateway bot.
type Account struct {
	ID AccountID
	// Domain is the account's address, e.g. "https://shop.retailcrm.ru".
	Domain string
	// APIKey is the retailCRM API v5 key.
	APIKey Secret
	// MGEndpoint is the MessageGateway root returned on module registration.
	MGEndpoint string
	// MGToken is the bot token returned on module registration.
	MGToken Secret
	// Settings are the account's last valid settings.
	Settings Settings
}
