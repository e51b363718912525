package checkout

// Queued is how many redemptions of the group wait for a batch, and whether a batch of
// the group is running or about to.
func Queued(s *Service, group int64) (pending int, running bool) {
	s.qmu.Lock()
	defer s.qmu.Unlock()
	q := s.queues[group]
	if q == nil {
		return 0, false
	}
	return len(q.pending), q.running
}

// Batches is how many batches the service committed and how many items they held.
func Batches(s *Service) (batches, items int64) { return s.batches.Load(), s.batched.Load() }
