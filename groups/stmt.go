package groups

import (
	"context"
	"database/sql"
	"fmt"
	"sync"
)

// stmtSet caches a Store's prepared statements: a prepared statement is parsed once
// per connection and runs in one round trip (lib/pq otherwise parses and describes every
// parameterised query in a round trip of its own before running it), and its plan is
// reused. database/sql re-prepares on each connection as needed.
type stmtSet struct {
	mu sync.Mutex
	m  map[string]*sql.Stmt
}

// stmt returns the prepared statement for query on the store's database handle.
func (s *Store) stmt(ctx context.Context, query string) (*sql.Stmt, error) {
	s.stmts.mu.Lock()
	defer s.stmts.mu.Unlock()
	if st, ok := s.stmts.m[query]; ok {
		return st, nil
	}
	st, err := s.db.PrepareContext(ctx, query)
	if err != nil {
		return nil, fmt.Errorf("preparing a statement: %w", err)
	}
	s.stmts.m[query] = st
	return st, nil
}
