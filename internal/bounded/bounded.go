// Package bounded holds what berth's bounded in-memory caches share: how they
// choose what to drop when full.
package bounded

import "time"

// SampleOldest returns the key of the oldest of up to eight arbitrary entries
// of m: bounded caches evict with it, keeping memory bounded without the
// bookkeeping of a full LRU.
func SampleOldest[V any](m map[string]V, at func(V) time.Time) string {
	var key string
	var oldest time.Time
	i := 0
	for k, v := range m {
		if t := at(v); i == 0 || t.Before(oldest) {
			key, oldest = k, t
		}
		if i++; i == 8 {
			break
		}
	}
	return key
}
