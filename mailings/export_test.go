package mailings

// OutboxLock is outboxLock, for the tests of package mailings_test.
const OutboxLock = outboxLock
