package store

import (
	"context"

	"github.com/redis/go-redis/v9"
)

// StreamEntry is one entry of a Redis stream.
type StreamEntry struct {
	ID     string
	Fields map[string]string
}

// Append adds an entry to the stream at key, trimming the stream to about
// maxLen entries (approximate trimming, cheap for Redis), and returns the
// entry's id. One round trip; not retried.
func (s *Store) Append(ctx context.Context, key string, maxLen int64, fields map[string]string) (string, error) {
	ctx, cancel := s.withDeadline(ctx)
	defer cancel()
	values := make([]string, 0, 2*len(fields))
	for k, v := range fields {
		values = append(values, k, v)
	}
	id, err := s.rdb.XAdd(ctx, &redis.XAddArgs{Stream: key, MaxLen: maxLen, Approx: true, Values: values}).Result()
	return id, translate(err)
}

// Newest returns up to count entries of the stream at key, newest first,
// starting at or before the entry id before ("" for the newest).
func (s *Store) Newest(ctx context.Context, key string, count int64, before string) ([]StreamEntry, error) {
	ctx, cancel := s.withDeadline(ctx)
	defer cancel()
	if before == "" {
		before = "+"
	}
	msgs, err := s.rdb.XRevRangeN(ctx, key, before, "-", count).Result()
	if err != nil {
		return nil, translate(err)
	}
	out := make([]StreamEntry, len(msgs))
	for i, m := range msgs {
		f := make(map[string]string, len(m.Values))
		for k, v := range m.Values {
			if s, ok := v.(string); ok {
				f[k] = s
			}
		}
		out[i] = StreamEntry{ID: m.ID, Fields: f}
	}
	return out, nil
}
