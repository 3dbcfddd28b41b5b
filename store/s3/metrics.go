package s3

import (
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the store's Prometheus series: the latency of every request to
// the bucket, by operation and result, and what the local cache answered.
// They are made for every Store (counting is a few atomic adds) and
// registered only when Options.Registerer is set.
type metrics struct {
	requests *prometheus.HistogramVec // op, result
	byOp     [numOps][numResults]prometheus.Observer

	cache                 *prometheus.CounterVec // result
	hit, miss, revalidate prometheus.Counter
}

// op is what a request to the bucket does.
type op uint8

const (
	opHead   op = iota // HEAD of an object: Stat, Create, Remove, WalkKeys
	opGet              // GET of an object, body included
	opPut              // PUT of an object, body included
	opDelete           // DELETE of an object
	opList             // one page of a listing, body included
	opCheck            // HEAD of the bucket: Check (startup, readiness)
	opOther            // anything else the client sends (the bucket's location)
	numOps
)

var opNames = [numOps]string{"head", "get", "put", "delete", "list", "check", "other"}

type result uint8

const (
	resOK result = iota
	resNotFound
	resNotModified
	resPrecondition
	resError
	numResults
)

var resultNames = [numResults]string{"ok", "not_found", "not_modified", "precondition_failed", "error"}

// expected are the pairs of op and result that berth's requests give in
// normal operation: their series are made up front, so that a dashboard sees
// zeros rather than nothing. Other pairs get theirs when they first happen.
var expected = map[op][]result{
	opHead:   {resOK, resNotFound, resError},
	opGet:    {resOK, resNotFound, resNotModified, resError},
	opPut:    {resOK, resPrecondition, resError},
	opDelete: {resOK, resError},
	opList:   {resOK, resError},
	opCheck:  {resOK, resError},
}

func newMetrics() *metrics {
	m := &metrics{
		requests: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "berth_store_request_duration_seconds",
			Help: "Requests to the S3 store's bucket, by op (head, get, put, delete, list, check, other) and result " +
				"(ok, not_found, not_modified, precondition_failed: a conditional write lost to another, error); " +
				"get, put and list include the body, each retry is a request of its own. The disk store has no such series.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2.5, 12), // 1ms to 1 minute
		}, []string{"op", "result"}),
		cache: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "berth_store_local_cache_total",
			Help: "Opens of the S3 store's keys, by what the replica's local cache did: hit (an immutable key served " +
				"without asking the bucket), revalidated (a mutable key the bucket confirmed unchanged, 304), miss " +
				"(downloaded); concurrent opens of one key share one download, counted once.",
		}, []string{"result"}),
	}
	for o, rs := range expected {
		for _, r := range rs {
			m.byOp[o][r] = m.requests.WithLabelValues(opNames[o], resultNames[r])
		}
	}
	m.hit = m.cache.WithLabelValues("hit")
	m.miss = m.cache.WithLabelValues("miss")
	m.revalidate = m.cache.WithLabelValues("revalidated")
	return m
}

// observe records one request of o that began at start.
func (m *metrics) observe(o op, r result, start time.Time) {
	obs := m.byOp[o][r]
	if obs == nil {
		obs = m.requests.WithLabelValues(opNames[o], resultNames[r])
	}
	obs.Observe(time.Since(start).Seconds())
}

// register adds the series to reg, with the local cache's size and limit.
func (m *metrics) register(reg prometheus.Registerer, c *cache) error {
	size := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "berth_store_local_cache_bytes",
		Help: "Bytes in the S3 store's local cache of this replica (files being spooled not counted).",
	}, func() float64 { return float64(c.bytes()) })
	limit := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "berth_store_local_cache_limit_bytes",
		Help: "The bound of the S3 store's local cache (cache_size of --store); 0 keeps nothing.",
	}, func() float64 { return float64(c.limit) })
	for _, col := range []prometheus.Collector{m.requests, m.cache, size, limit} {
		if err := reg.Register(col); err != nil {
			return err
		}
	}
	return nil
}

// timedTransport times every request the S3 client sends, retries included.
// The op comes from the method and whether the path is the bucket's or an
// object's; the result from the status code.
type timedTransport struct {
	next   http.RoundTripper
	m      *metrics
	bucket string // "/BUCKET", the bucket's path in path-style requests
}

func (t *timedTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	o := t.op(req)
	start := time.Now()
	resp, err := t.next.RoundTrip(req)
	if err != nil {
		t.m.observe(o, resError, start)
		return resp, err
	}
	r := resultOf(resp.StatusCode)
	if r == resOK && req.Method == http.MethodGet && resp.Body != nil && resp.Body != http.NoBody {
		// The body is the request's larger part: observed when it is read.
		resp.Body = &timedBody{ReadCloser: resp.Body, t: t, op: o, start: start}
		return resp, nil
	}
	t.m.observe(o, r, start)
	return resp, nil
}

// op classifies a request. A bucket-level request's path is "/" (virtual
// hosted) or "/BUCKET" (path style); every berth key holds a slash, so no
// object's path is either.
func (t *timedTransport) op(req *http.Request) op {
	p := strings.TrimSuffix(req.URL.Path, "/")
	onBucket := p == "" || p == t.bucket
	switch req.Method {
	case http.MethodHead:
		if onBucket {
			return opCheck
		}
		return opHead
	case http.MethodGet:
		if !onBucket {
			return opGet
		}
		if req.URL.Query().Has("list-type") {
			return opList
		}
	case http.MethodPut:
		if !onBucket {
			return opPut
		}
	case http.MethodDelete:
		if !onBucket {
			return opDelete
		}
	}
	return opOther
}

func resultOf(code int) result {
	switch {
	case code >= 200 && code < 300:
		return resOK
	case code == http.StatusNotModified:
		return resNotModified
	case code == http.StatusNotFound:
		return resNotFound
	case code == http.StatusPreconditionFailed:
		return resPrecondition
	}
	return resError
}

// timedBody observes its request when the body ends: at EOF, at a read
// error, or at Close (a reader may stop before EOF when it has what it
// wants, as an XML decoder does).
type timedBody struct {
	io.ReadCloser
	t     *timedTransport
	op    op
	start time.Time
	done  atomic.Bool // observed; Close may come from another goroutine
}

func (b *timedBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err != nil && b.done.CompareAndSwap(false, true) {
		r := resOK
		if err != io.EOF {
			r = resError
		}
		b.t.m.observe(b.op, r, b.start)
	}
	return n, err
}

func (b *timedBody) Close() error {
	if b.done.CompareAndSwap(false, true) {
		b.t.m.observe(b.op, resOK, b.start)
	}
	return b.ReadCloser.Close()
}
