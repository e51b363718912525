// Package faults is promopool's fault and abuse suite. Its tests build bin/promopool,
// run real web, worker and scheduler processes against a schema of their own and Redis
// DB 13 (FAULTS_REDIS_URL; flushed), inject faults (SIGKILLed workers, Redis
// connections killed and its data flushed, PostgreSQL backends terminated, a TCP proxy
// that cuts or slows connections, a web process killed mid-upload, clients that hang
// up, a scheduler SIGKILLed and restarted) and bad input over HTTP, then check
// promopool's promises in SQL and over HTTP:
//
//  1. no code is issued to two customers; issued + active + expired = uploaded per group;
//  2. every recipient of a mailing reaches a final state, none gets two different
//     messages, and a re-run batch issues nothing new;
//  3. no upload leaves half its rows; an undo removes exactly the unissued codes;
//  4. with three schedulers at once (one SIGKILLed and restarted), each balance alert
//     reaches the webhook once;
//  5. no unused code appears in logs, metrics, Asynq payloads or error messages.
//
// The scale-out scenarios run on engines of their own (docs/scaling.md): a Redis primary
// with a replica and three redis-sentinel processes whose primary is SIGKILLed mid-send
// (sentinel_test.go); a PostgreSQL primary and a pg_basebackup standby serving web's
// heavy reads (replica_test.go); web and two workers on hosts made of network namespaces
// against PostgreSQL and Redis on another, one worker's link cut (netns_test.go, root).
//
// `go test ./faults` runs the short version (a few thousand recipients, one or two
// faults each). FAULTS_LONG=1 (scripts/chaos.sh) runs the long one: a 200,000-recipient
// mailing with several kills and a 5,000,000-code upload killed mid-way. Both print the
// report table at the end.
package faults
