package groups

// SetClaimHooks installs the claim's test hooks on s (nil: none) and returns a function
// that removes them. Set them before the claims they watch start.
func SetClaimHooks(s *Store, beforeIssue, onConflict func()) (restore func()) {
	s.hooks = claimHooks{beforeIssue: beforeIssue, onConflict: onConflict}
	return func() { s.hooks = claimHooks{} }
}
