package retailcrm_test

import (
	"testing"

	"github.com/botdistributor/botdistributor/binding/retailcrm"
)

func TestNormalizePhone(t *testing.T) {
	ok := []struct{ raw, region, want string }{
		{"+79161234567", "RU", "+79161234567"},
		{"+7 (916) 123-45-67", "RU", "+79161234567"},
		{"8 916 123 45 67", "RU", "+79161234567"},
		{"79161234567", "RU", "+79161234567"},
		{"9161234567", "ru", "+79161234567"},
		{"4915112345678", "RU", "+4915112345678"},
		{"0151 12345678", "DE", "+4915112345678"},
		{"+44 20 7946 0958", "RU", "+442079460958"},
	}
	for _, tc := range ok {
		got, err := retailcrm.NormalizePhone(tc.raw, tc.region)
		if err != nil || got != tc.want {
			t.Errorf("NormalizePhone(%q, %q) = %q, %v; want %q", tc.raw, tc.region, got, err, tc.want)
		}
	}
	for _, raw := range []string{"", "   ", "12345", "abc", "+7 (916) 123-45-678"} {
		if got, err := retailcrm.NormalizePhone(raw, "RU"); err == nil {
			t.Errorf("NormalizePhone(%q) = %q, want an error", raw, got)
		}
	}
}
