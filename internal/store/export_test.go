package store

// PipelineRoom is how many script runs the store holds at once without
// blocking a caller: the queue, and one full batch per sender.
func PipelineRoom(s *Store) int { return cap(s.pipe.queue) + senders*maxBatch }
