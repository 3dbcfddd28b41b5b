package main

import (
	"context"
	"strings"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/berth-dev/berth/store"
	"github.com/berth-dev/berth/store/s3"
)

// storeUsage documents --store where a command can serve from an object store.
const storeUsage = "`directory` of the store (created if missing; module cache layout), or an S3 bucket:\n" +
	"s3://BUCKET/PREFIX?endpoint=URL&region=R&cache=DIR&cache_size=SIZE (credentials from the\n" +
	"AWS_* environment variables, ~/.aws/credentials or an IAM role; a local cache of hot files\n" +
	"in cache=DIR, default a temporary directory, of cache_size, default 1GiB)"

// openStore opens the store --store names: an S3 bucket for an s3:// URL,
// with its request and local-cache series in reg (nil: none), else a disk
// store in that directory. It returns the store, where it is (for logs), and
// a function that releases it.
func openStore(ctx context.Context, spec string, reg prometheus.Registerer) (st store.Store, where string, closeFn func() error, err error) {
	if strings.HasPrefix(spec, "s3://") {
		opts, err := s3.ParseURL(spec)
		if err != nil {
			return nil, "", nil, err
		}
		opts.Registerer = reg
		s, err := s3.New(ctx, opts)
		if err != nil {
			return nil, "", nil, err
		}
		return s, s.String(), s.Close, nil
	}
	d, err := store.OpenDisk(spec)
	if err != nil {
		return nil, "", nil, err
	}
	return d, d.Root(), func() error { return nil }, nil
}
