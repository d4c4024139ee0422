package bot

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/botdistributor/botdistributor/crm"
	"github.com/botdistributor/botdistributor/distributor/mgsource"
)

// cardChanger is the distributor's CardChanged.
type cardChanger interface {
	CardChanged(ctx context.Context, crmCustomer int64) error
}

// cards follows retailCRM's customer history for one account: a card
// whose personal manager, segments or tags changed has the profiles read
// from it dropped, so that routing reads it again. The position in the
// history is this process's: a process that takes the account over
// starts from its own now (profiles also age out, see
// distributor.WithProfiler).
type cards struct {
	mu    sync.Mutex
	since int // the last history record seen; 0 before the first read
	next  time.Time
}

// poll reads the changes since the last poll, at most every every (one
// request while nothing changed, of the 10 a second the key allows), and
// tells t (the distributor behind the roster) of the changed cards.
func (c *cards) poll(ctx context.Context, client *crm.Client, t mgsource.Target, now time.Time, every time.Duration) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if now.Before(c.next) {
		return nil
	}
	cc, ok := t.(cardChanger) // the fleet's target of the account's distributor
	if !ok {
		return nil
	}
	changes, last, err := client.CustomerChanges(ctx, c.since)
	if err != nil {
		return fmt.Errorf("retailCRM customer history: %w", err)
	}
	var errs []error
	seen := map[int64]bool{}
	for _, ch := range changes {
		if !crm.ProfileField(ch.Field) || seen[ch.Customer] || ch.Customer <= 0 {
			continue
		}
		seen[ch.Customer] = true
		if err := cc.CardChanged(ctx, ch.Customer); err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 {
		return errors.Join(errs...) // read again next time
	}
	c.since, c.next = last, now.Add(every)
	return nil
}
