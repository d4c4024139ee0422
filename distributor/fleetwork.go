package distributor

import (
	"context"

	"github.com/botdistributor/botdistributor/store"
)

// WithoutWorkers makes [New] start no workers: the Distributor does only
// the jobs handed to it through [Distributor.Do]. A host of many
// Distributors over one store (package fleet) runs one worker set for all
// of them and hands each job to its account's Distributor, where a
// Distributor per account with workers of its own would run a job engine
// (and, on the SQL stores, its pollers) per account.
//
// WithWork still tells the Distributor how many attempts a job has (its
// last failed attempt is reported to Hooks.Dead), so give the host's
// worker set the same store.WorkOptions.
func WithoutWorkers() Option { return withoutWorkers{} }

type withoutWorkers struct{}

func (withoutWorkers) apply(*config) error { return nil }

// runsWorkers reports whether New starts the Distributor's own workers:
// unless WithoutWorkers is among opts.
func runsWorkers(opts []Option) bool {
	for _, o := range opts {
		if _, ok := o.(withoutWorkers); ok {
			return false
		}
	}
	return true
}

// Do does one job of the work pipeline, as the Distributor's own workers
// would: it is a [store.JobHandler] for the jobs of the Distributor's
// account (a job of another account is an error). A nil error completes
// the job; any other error asks for another attempt (a
// *store.RetryAfterError says after how long). After
// [Distributor.Close], Do returns ErrClosed and does nothing, so the job
// is tried again later. Do is safe for concurrent use; the caller bounds
// how many run at once.
func (d *Distributor) Do(ctx context.Context, j store.Job) error {
	if d.isClosed() {
		return ErrClosed
	}
	return d.work(ctx, j)
}
