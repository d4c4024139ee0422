package bot

import (
	"context"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	bd "github.com/botdistributor/botdistributor"
	"github.com/botdistributor/botdistributor/distributor"
	"github.com/botdistributor/botdistributor/store"
)

// Metrics counts what the distributors do, per account, in a Prometheus
// registry of its own:
//
//	botdistributor_assigned_total{account,to,from_queue}   dialogs given a responsible ("manager" or "bot")
//	botdistributor_queued_total{account,reason}            dialogs that started waiting, by reply situation
//	botdistributor_reassigned_total{account}               dialogs moved between managers
//	botdistributor_replies_total{account,situation}        automatic replies sent
//	botdistributor_errors_total{account,op}                failed operations ("gateway.assign", "job reply", ...)
//	botdistributor_dead_letters_total{account,kind}        jobs given up after their last retry, by kind ("reply", ...)
//	botdistributor_assign_wait_seconds{account}            time from a dialog's opening to its assignment
//	botdistributor_wait_alerts_total{account}              wait alerts: the queue's longest wait passed the account's bound
//
// plus the Go runtime and process collectors. It is safe for concurrent use.
type Metrics struct {
	reg        *prometheus.Registry
	assigned   *prometheus.CounterVec
	queued     *prometheus.CounterVec
	reassigned *prometheus.CounterVec
	replies    *prometheus.CounterVec
	errors     *prometheus.CounterVec
	dead       *prometheus.CounterVec
	alerts     *prometheus.CounterVec
	wait       *prometheus.HistogramVec
}

// NewMetrics returns metrics registered in a fresh registry.
func NewMetrics() *Metrics {
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		assigned: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "botdistributor", Name: "assigned_total",
			Help: "Dialogs given a responsible, by kind of responsible and whether they waited in the queue.",
		}, []string{"account", "to", "from_queue"}),
		queued: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "botdistributor", Name: "queued_total",
			Help: "Dialogs that started waiting in the queue, by reply situation.",
		}, []string{"account", "reason"}),
		reassigned: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "botdistributor", Name: "reassigned_total",
			Help: "Dialogs moved from one manager to another.",
		}, []string{"account"}),
		replies: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "botdistributor", Name: "replies_total",
			Help: "Automatic replies sent, by situation.",
		}, []string{"account", "situation"}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "botdistributor", Name: "errors_total",
			Help: "Failed operations, by operation.",
		}, []string{"account", "op"}),
		dead: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "botdistributor", Name: "dead_letters_total",
			Help: "Jobs given up after their last retry (listed on the decisions page), by kind.",
		}, []string{"account", "kind"}),
		alerts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "botdistributor", Name: "wait_alerts_total",
			Help: "Wait alerts raised: the longest wait of the queue passed the account's bound (once per breach).",
		}, []string{"account"}),
		wait: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "botdistributor", Name: "assign_wait_seconds",
			Help:    "Time from a dialog's opening to its assignment.",
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600},
		}, []string{"account"}),
	}
	m.reg.MustRegister(m.assigned, m.queued, m.reassigned, m.replies, m.errors, m.dead, m.alerts, m.wait,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// Watch adds gauges read from states at every scrape:
//
//	botdistributor_queue_length{account}          dialogs waiting now
//	botdistributor_longest_wait_seconds{account}  how long the oldest waiting dialog has waited
//	botdistributor_open_dialogs{account}          dialogs the managers hold now
//	botdistributor_stream_connected{account}      1 while this process runs the MG event stream, connected
//	botdistributor_active{account}                1 while the account is distributed
//	botdistributor_dead_letters{account}          jobs given up and kept now (up to 1000)
//
// Pass Supervisor.States. Call it once.
func (m *Metrics) Watch(states func(ctx context.Context) []AccountState) {
	m.reg.MustRegister(&stateCollector{states: states})
}

var (
	descQueue     = prometheus.NewDesc("botdistributor_queue_length", "Dialogs waiting in the queue now.", []string{"account"}, nil)
	descWait      = prometheus.NewDesc("botdistributor_longest_wait_seconds", "How long the oldest waiting dialog has waited.", []string{"account"}, nil)
	descOpen      = prometheus.NewDesc("botdistributor_open_dialogs", "Dialogs the managers hold now.", []string{"account"}, nil)
	descConnected = prometheus.NewDesc("botdistributor_stream_connected", "1 while this process runs the MessageGateway event stream and it is connected.", []string{"account"}, nil)
	descActive    = prometheus.NewDesc("botdistributor_active", "1 while the account is distributed (its settings are switched on).", []string{"account"}, nil)
	descDead      = prometheus.NewDesc("botdistributor_dead_letters", "Jobs given up after their last retry and kept now (up to 1000).", []string{"account"}, nil)
)

// stateCollector reads the accounts' state at scrape time.
type stateCollector struct {
	states func(ctx context.Context) []AccountState
}

func (c *stateCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descQueue, descWait, descOpen, descConnected, descActive, descDead} {
		ch <- d
	}
}

func (c *stateCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	b := func(v bool) float64 {
		if v {
			return 1
		}
		return 0
	}
	for _, s := range c.states(ctx) {
		a := string(s.Account)
		ch <- prometheus.MustNewConstMetric(descQueue, prometheus.GaugeValue, float64(s.Queue), a)
		ch <- prometheus.MustNewConstMetric(descWait, prometheus.GaugeValue, s.LongestWait.Seconds(), a)
		ch <- prometheus.MustNewConstMetric(descOpen, prometheus.GaugeValue, float64(s.Open), a)
		ch <- prometheus.MustNewConstMetric(descConnected, prometheus.GaugeValue, b(s.Connected), a)
		ch <- prometheus.MustNewConstMetric(descActive, prometheus.GaugeValue, b(s.Active), a)
		ch <- prometheus.MustNewConstMetric(descDead, prometheus.GaugeValue, float64(s.DeadLetters), a)
	}
}

// Handler serves the metrics in the Prometheus exposition format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg})
}

// Registry returns the registry the metrics live in, e.g. to add more.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Hooks returns distributor hooks that count into m.
func (m *Metrics) Hooks() distributor.Hooks {
	return distributor.Hooks{
		Assigned: func(account bd.AccountID, to bd.Responsible, wait time.Duration, fromQueue bool) {
			kind := "manager"
			if _, ok := to.Bot(); ok {
				kind = "bot"
			}
			q := "false"
			if fromQueue {
				q = "true"
			}
			m.assigned.WithLabelValues(string(account), kind, q).Inc()
			m.wait.WithLabelValues(string(account)).Observe(max(wait, 0).Seconds())
		},
		Queued: func(account bd.AccountID, reason bd.Situation) {
			m.queued.WithLabelValues(string(account), string(reason)).Inc()
		},
		Reassigned: func(account bd.AccountID, _ bd.ManagerID, _ bd.Responsible) {
			m.reassigned.WithLabelValues(string(account)).Inc()
		},
		Replied: func(account bd.AccountID, s bd.Situation) {
			m.replies.WithLabelValues(string(account), string(s)).Inc()
		},
		Failed: func(account bd.AccountID, op string, _ error) {
			m.errors.WithLabelValues(string(account), op).Inc()
		},
		Dead: func(account bd.AccountID, j store.Job, _ error) {
			m.dead.WithLabelValues(string(account), string(j.Kind)).Inc()
		},
		WaitAlert: func(account bd.AccountID, _ distributor.WaitAlert) {
			m.alerts.WithLabelValues(string(account)).Inc()
		},
	}
}

// Touch makes the account's usual series visible at zero before anything
// happened, so dashboards and alerts see the account at once. Pass it as
// Options.Started.
func (m *Metrics) Touch(account bd.AccountID) {
	a := string(account)
	m.reassigned.WithLabelValues(a)
	m.alerts.WithLabelValues(a)
	m.wait.WithLabelValues(a)
	for _, kind := range []string{"manager", "bot"} {
		m.assigned.WithLabelValues(a, kind, "false")
		m.assigned.WithLabelValues(a, kind, "true")
	}
	for _, s := range []bd.Situation{bd.NoManagerOnline, bd.AllManagersBusy, bd.OutsideWorkingHours} {
		m.queued.WithLabelValues(a, string(s))
	}
	for _, s := range bd.Situations() {
		m.replies.WithLabelValues(a, string(s))
	}
	for _, op := range []string{"gateway.assign", "job distribute", "job reply", "job bind", "job move", "alert webhook"} {
		m.errors.WithLabelValues(a, op)
	}
	for _, k := range []store.JobKind{store.JobDistribute, store.JobReply, store.JobBind, store.JobMove, store.JobDrain} {
		m.dead.WithLabelValues(a, string(k))
	}
}

// CombineHooks returns hooks that call each of hs in turn; nil hooks are
// skipped.
func CombineHooks(hs ...distributor.Hooks) distributor.Hooks {
	var (
		decision   []func(distributor.Trace)
		assigned   []func(bd.AccountID, bd.Responsible, time.Duration, bool)
		reassigned []func(bd.AccountID, bd.ManagerID, bd.Responsible)
		queued     []func(bd.AccountID, bd.Situation)
		replied    []func(bd.AccountID, bd.Situation)
		failed     []func(bd.AccountID, string, error)
		dead       []func(bd.AccountID, store.Job, error)
		waitAlert  []func(bd.AccountID, distributor.WaitAlert)
	)
	for _, h := range hs {
		if h.Decision != nil {
			decision = append(decision, h.Decision)
		}
		if h.Assigned != nil {
			assigned = append(assigned, h.Assigned)
		}
		if h.Reassigned != nil {
			reassigned = append(reassigned, h.Reassigned)
		}
		if h.Queued != nil {
			queued = append(queued, h.Queued)
		}
		if h.Replied != nil {
			replied = append(replied, h.Replied)
		}
		if h.Failed != nil {
			failed = append(failed, h.Failed)
		}
		if h.Dead != nil {
			dead = append(dead, h.Dead)
		}
		if h.WaitAlert != nil {
			waitAlert = append(waitAlert, h.WaitAlert)
		}
	}
	var out distributor.Hooks
	if len(decision) > 0 {
		out.Decision = func(t distributor.Trace) {
			for _, f := range decision {
				f(t)
			}
		}
	}
	if len(assigned) > 0 {
		out.Assigned = func(a bd.AccountID, to bd.Responsible, wait time.Duration, fromQueue bool) {
			for _, f := range assigned {
				f(a, to, wait, fromQueue)
			}
		}
	}
	if len(reassigned) > 0 {
		out.Reassigned = func(a bd.AccountID, from bd.ManagerID, to bd.Responsible) {
			for _, f := range reassigned {
				f(a, from, to)
			}
		}
	}
	if len(queued) > 0 {
		out.Queued = func(a bd.AccountID, s bd.Situation) {
			for _, f := range queued {
				f(a, s)
			}
		}
	}
	if len(replied) > 0 {
		out.Replied = func(a bd.AccountID, s bd.Situation) {
			for _, f := range replied {
				f(a, s)
			}
		}
	}
	if len(failed) > 0 {
		out.Failed = func(a bd.AccountID, op string, err error) {
			for _, f := range failed {
				f(a, op, err)
			}
		}
	}
	if len(dead) > 0 {
		out.Dead = func(a bd.AccountID, j store.Job, err error) {
			for _, f := range dead {
				f(a, j, err)
			}
		}
	}
	if len(waitAlert) > 0 {
		out.WaitAlert = func(a bd.AccountID, w distributor.WaitAlert) {
			for _, f := range waitAlert {
				f(a, w)
			}
		}
	}
	return out
}
