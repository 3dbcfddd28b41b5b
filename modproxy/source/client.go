package source

import (
	"net/http"
	"os"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/berth-dev/berth/netkit"
)

var lookupEnv = os.LookupEnv

// NewClient returns the upstream client berth uses: a netkit client with
// per-phase timeouts, a large idle pool (a proxy talks to few hosts with many
// parallel requests), safe retries with a budget, a circuit breaker per
// upstream host, no overall timeout (bodies can be large; callers pass
// deadlines in the context), and file:// support for local upstream trees.
// reg, if not nil, receives the client's metrics.
func NewClient(reg prometheus.Registerer) *http.Client {
	opts := netkit.ClientOptions{
		DialTimeout:         10 * time.Second,
		MaxIdleConnsPerHost: 64,
		Metrics:             reg,
		Breaker:             &netkit.BreakerPolicy{},
	}
	t := netkit.NewTransport(opts)
	t.RegisterProtocol("file", http.NewFileTransport(http.Dir("/")))
	opts.Base = t
	return netkit.NewClient(opts)
}

// DefaultClient is the client used when a Fetcher has none (no metrics).
var DefaultClient = NewClient(nil)
