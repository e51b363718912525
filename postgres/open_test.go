package postgres

import (
	"context"
	"strings"
	"testing"
)

// TestRedact: no form of connection string shows its password in a message.
func TestRedact(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"postgres://app:s3cret@db:5432/pp?sslmode=disable", "postgres://app:xxxxx@db:5432/pp?sslmode=disable"},
		{"postgres://app@db/pp?password=s3cret", "postgres://app@db/pp?password=xxxxx"},
		{"host=db user=app password=s3cret dbname=pp", "host=db user=app password=xxxxx dbname=pp"},
		{"host=db password = 's3 c\\'ret' dbname=pp", "host=db password=xxxxx dbname=pp"},
		{"password=s3cret host=db", "password=xxxxx host=db"},
		{"host=db user=passwordless", "host=db user=passwordless"},
		{"postgres://app:s3cret@db:5432/pp\x7f", "(a connection URL that does not parse)"},
	} {
		if got := Redact(tc.in); got != tc.want || strings.Contains(got, "s3") {
			t.Errorf("Redact(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

// TestOpenErrorsHideThePassword: a connection that fails, in either form, or a URL that
// does not parse, says where it tried without the password.
func TestOpenErrorsHideThePassword(t *testing.T) {
	for _, dsn := range []string{
		"host=127.0.0.1 port=1 user=postgres password=s3cretpw dbname=x sslmode=disable connect_timeout=1",
		"host=127.0.0.1 port=1 user=postgres password='s3cretpw' dbname=x sslmode=disable connect_timeout=1",
		"postgres://postgres:s3cretpw@127.0.0.1:1/x?sslmode=disable&connect_timeout=1",
		"postgres://postgres:s3cretpw@127.0.0.1:1/x\x7f",
		"host=127.0.0.1 port=1 password=s3cretpw sslmode=bogus",
	} {
		_, err := Open(context.Background(), Config{URL: dsn})
		if err == nil {
			t.Fatalf("%q: connected", dsn)
		}
		if strings.Contains(err.Error(), "s3cretpw") {
			t.Errorf("the error shows the password: %v", err)
		}
	}
}
