// Package mailer hands rendered messages to a transport: SMTP, the
// platform's HTTP sender (webhook), .eml files, or nothing at all.
//
// A Transport sends a batch and returns one Result per message. Its Outcome
// tells the caller what may be done with the message's promo codes:
//
//   - Sent: accepted by the next hop.
//   - Rejected: refused before delivery and never delivered; its codes may
//     go back to the pool.
//   - Temporary: failed before delivery for a transient reason; retry later.
//   - Ambiguous: failed when the message may already have been delivered;
//     do not retry blindly, keep its codes issued.
//
// # Classification
//
//	SMTP
//	  connect / greeting / STARTTLS / AUTH fails   Temporary (whole batch: Send returns an error)
//	  MAIL, RCPT or DATA answered 5xx              Rejected (but 530 "authentication
//	                                               required" is Temporary)
//	  MAIL, RCPT or DATA answered 4xx              Temporary
//	  network error before DATA was accepted       Temporary (one retry on a fresh connection
//	                                               if the failed one had been reused)
//	  network error writing the body or awaiting
//	  the reply to the final dot                   Ambiguous
//	  final dot answered 5xx                       Rejected
//	  final dot answered 4xx                       Temporary
//	Webhook
//	  2xx                                          Sent
//	  4xx other than 408 and 429                   Rejected
//	  5xx, 408, 429 after the retries              Temporary
//	  connection error before the request was
//	  written (refused, dial timeout)              Temporary after the retries
//	  error or timeout after it was written        Ambiguous (not retried)
//	  1xx, 3xx (redirects are not followed)        Temporary
//	Any transport
//	  invalid message (CR/LF in a header, no body) Rejected, ErrInvalidMessage
//	  ctx ended before the message was started     Temporary
//
// # Transport URLs
//
// ParseURL reads a transport URL into a Config:
//
//	smtp://[user:pass@]host[:port][?params]    SMTP, STARTTLS by default (port 587)
//	smtps://[user:pass@]host[:port][?params]   SMTP over implicit TLS (port 465)
//	webhook+https://host/path[?params]         POST JSON to https://host/path
//	webhook+http://host/path[?params]          the same over plain HTTP
//	https://host/path, http://host/path        shorthand for the two above
//	file:///var/spool/promopool                one .eml file per message in that folder
//	file://relative/dir                        (relative to the working directory)
//	null://                                    drop and count (benchmarks)
//
// SMTP parameters (unknown ones are an error):
//
//	tls=starttls|tls|none   encryption (starttls; port 25 with none, 465 with tls)
//	concurrency=N           connections at most (2)
//	rate=R                  messages per second at most, fractional allowed (no limit)
//	timeout=30s             dial/handshake and per-message exchange timeout
//	idle_timeout=60s        how long an idle connection is kept for reuse
//	helo=name               EHLO name (localhost)
//
// User name and password are percent-decoded; credentials are sent with AUTH
// PLAIN, which net/smtp refuses over an unencrypted connection to anything
// but localhost.
//
// Webhook parameters (removed from the URL; any other query parameter is
// kept and sent to the endpoint):
//
//	timeout=10s             per attempt
//	retries=3               retries after the first attempt (retries=0: none)
//	backoff=500ms           first wait between attempts, doubled each time
//	max_backoff=30s         cap on the wait, also on Retry-After
//	concurrency=4           requests in flight at most
//	token=secret            sent as "Authorization: Bearer secret"
//
// Each request is a POST of
//
//	{"id": "...", "from": "...", "to": "...", "subject": "...",
//	 "html": "...", "text": "...", "headers": {"List-Unsubscribe": "..."}}
//
// with "Idempotency-Key: <id>" so the receiver can drop a repeated message.
//
// # Logging
//
// Transports log through the injected slog.Logger: the transport kind, batch
// counts per outcome, and for each failed message its outcome, the failing
// stage, the reply code and the recipient's domain. They never log a
// subject, a body, a full address or a server's reply text (which often
// quotes the address): messages carry promo codes.
package mailer
