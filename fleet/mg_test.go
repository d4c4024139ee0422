package fleet_test

import (
	"context"
	"math"
	"testing"

	bd "github.com/botdistributor/botdistributor"
	"github.com/botdistributor/botdistributor/fleet"
)

// TestMGOptions: WithMGRate builds each account's limiter; a bad option
// is refused by the build, naming the option, rather than blocking every
// request.
func TestMGOptions(t *testing.T) {
	acc := bd.Account{ID: "shop", MGEndpoint: "https://mg.example", MGToken: "token"}
	for _, c := range []struct {
		name string
		opt  fleet.MGOption
		want string // "" for no error
	}{
		{"defaults", fleet.WithMGRate(0, 0), ""},
		{"unlimited", fleet.WithMGRate(math.Inf(1), 0), ""},
		{"burst only", fleet.WithMGRate(0, 5), ""},
		{"negative rate", fleet.WithMGRate(-1, 0), "fleet: MG: WithMGRate: rate -1 and burst 0 must not be negative"},
		{"negative burst", fleet.WithMGRate(0, -1), "fleet: MG: WithMGRate: rate 0 and burst -1 must not be negative"},
		{"nil source option", fleet.WithSource(nil), "fleet: MG: WithSource: nil mgsource.Option"},
		{"nil option", nil, "fleet: MG: nil option"},
	} {
		_, err := fleet.MG(c.opt)(context.Background(), acc)
		if (c.want == "") != (err == nil) || (err != nil && err.Error() != c.want) {
			t.Errorf("%s: build returned %v, want %q", c.name, err, c.want)
		}
	}
}
