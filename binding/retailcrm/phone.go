package retailcrm

import (
	"fmt"
	"strings"

	"github.com/nyaruka/phonenumbers"
)

// NormalizePhone returns raw as an E.164 number ("+79161234567"). A number
// without a leading "+" is read in region (an ISO 3166 code such as "RU");
// when that gives no valid number and raw has enough digits, it is read
// once more as an international number without its "+", as messengers often
// send them ("4915112345678"). It returns an error naming raw when neither
// reading is a valid number. It is safe for concurrent use.
func NormalizePhone(raw, region string) (string, error) {
	n, err := parsePhone(raw, region)
	if err != nil {
		return "", err
	}
	return phonenumbers.Format(n, phonenumbers.E164), nil
}

func parsePhone(raw, region string) (*phonenumbers.PhoneNumber, error) {
	s := strings.TrimSpace(raw)
	if s == "" {
		return nil, fmt.Errorf("retailcrm: phone number is empty")
	}
	region = strings.ToUpper(region)
	if n, err := phonenumbers.Parse(s, region); err == nil && phonenumbers.IsValidNumber(n) {
		return n, nil
	}
	if !strings.HasPrefix(s, "+") {
		digits := onlyDigits(s)
		if len(digits) >= 8 {
			if n, err := phonenumbers.Parse("+"+digits, ""); err == nil && phonenumbers.IsValidNumber(n) {
				return n, nil
			}
		}
	}
	return nil, fmt.Errorf("retailcrm: %q is not a valid phone number (region %s)", raw, region)
}

// validRegion reports whether region is a region phonenumbers knows.
func validRegion(region string) bool {
	return phonenumbers.GetCountryCodeForRegion(strings.ToUpper(region)) != 0
}

func onlyDigits(s string) string {
	var b strings.Builder
	for _, r := range s {
		if r >= '0' && r <= '9' {
			b.WriteRune(r)
		}
	}
	return b.String()
}
