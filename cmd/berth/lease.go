package main

import (
	"fmt"
	"strings"

	"github.com/berth-dev/berth/modproxy/cache"
	"github.com/berth-dev/berth/modproxy/lease"
	"github.com/berth-dev/berth/store"
)

// leaseUsage documents --lease.
const leaseUsage = "keep a fetch single across replicas sharing an s3:// --store: a Redis `URL`,\n" +
	"redis://[:PASSWORD@]HOST:PORT[/DB] (rediss:// for TLS). A replica that finds a file's lease\n" +
	"taken waits for the other's object, and fetches itself if the lease expires (10s after its\n" +
	"holder's last renewal). An optimisation only: with Redis gone, replicas keep serving\n" +
	"correctly, each fetching on its own, and say so (a log line, /metrics, /readyz)\n" +
	"(default: none)"

// openLease returns the lease --lease names, nil for none. A disk store serves
// one proxy, which needs no lease.
func openLease(spec string, st store.Store) (cache.Lease, *lease.Redis, error) {
	if spec == "" {
		return nil, nil, nil
	}
	if _, ok := st.(*store.Disk); ok {
		return nil, nil, fmt.Errorf("--lease=%s: a lease keeps fetches single across replicas sharing a bucket; a disk --store serves one proxy, which needs none (use an s3:// --store, or drop --lease)", quoteArg(spec))
	}
	if !strings.HasPrefix(spec, "redis://") && !strings.HasPrefix(spec, "rediss://") {
		return nil, nil, fmt.Errorf("--lease=%s: want redis://HOST:PORT (or rediss:// for TLS)", quoteArg(spec))
	}
	l, err := lease.OpenRedis(spec, lease.RedisOptions{})
	if err != nil {
		return nil, nil, fmt.Errorf("--lease: %w", err)
	}
	return l, l, nil
}
