package store

// PipelineRoom is how many script runs the store holds at once without
// blocking a caller: the queue, and one full batch per sender.
func PipelineRoom(s *Store) int { return cap(s.pipe.queue) + senders*maxBatch }

// Queued is how many requests wait in the coalesced queue of sc's object
// whose first key is key.
func Queued(s *Store, sc *Script, key string) int {
	s.coal.mu.Lock()
	defer s.coal.mu.Unlock()
	if q := s.coal.queues[queueID{sc, key}]; q != nil {
		return len(q.pending)
	}
	return 0
}

// MaxRunRequests is how many requests one coalesced run holds.
const MaxRunRequests = maxRunRequests
