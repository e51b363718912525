package groups

// SetClaimHooks installs the claim's test hooks (nil: none) and returns a function that
// removes them.
func SetClaimHooks(beforeIssue, onConflict func()) (restore func()) {
	testHookBeforeIssue, testHookConflict = beforeIssue, onConflict
	return func() { testHookBeforeIssue, testHookConflict = nil, nil }
}
