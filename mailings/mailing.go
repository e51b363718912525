// Package mailings runs mass mailings: a mailing's templates are validated when it is
// created; starting it writes one outbox row per recipient and enqueues batch tasks;
// each batch claims the codes of all its recipients (one call per group), renders,
// hands the messages to a transport and records every outcome. PostgreSQL is the
// record of truth; Redis only carries the tasks, and a reconciler re-enqueues batches
// whose tasks were lost.
package mailings

import (
	"cmp"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/mail"
	"strings"
	"time"

	"github.com/jmoiron/sqlx"

	"promopool/auth"
	"promopool/customers"
	"promopool/groups"
	"promopool/macros"
	"promopool/mailer"
	"promopool/segments"
)

// Mailing statuses.
const (
	StatusDraft     = "draft"
	StatusRunning   = "running"
	StatusPaused    = "paused"
	StatusCancelled = "cancelled"
	StatusFinished  = "finished"
)

// Why a mailing is paused (Mailing.PauseKind).
const (
	PausePerson       = "person"        // the pause action: only a person resumes it
	PauseExhausted    = "exhausted"     // a group ran out: resumes by itself once its groups cover the waiting recipients
	PauseGroupDeleted = "group_deleted" // a group it draws from was deleted
	PauseGroup        = "group"         // a group it draws from is paused: resumes when the group is active again
)

// What a mailing does for a recipient a group has no code for (Mailing.OnExhaustion).
const (
	OnExhaustionPause    = "pause"    // the mailing pauses (SPEC §5)
	OnExhaustionSkip     = "skip"     // the recipient is skipped ("send while codes last")
	OnExhaustionFallback = "fallback" // the recipient gets the macro's fallback text, no code
)

// Recipient statuses.
const (
	RecipientQueued  = "queued"
	RecipientSent    = "sent"
	RecipientFailed  = "failed"
	RecipientSkipped = "skipped"
)

var (
	// ErrNotFound: no mailing has that id.
	ErrNotFound = errors.New("mailing not found")
	// ErrState: the mailing's status does not allow the action (e.g. resume a finished one).
	ErrState = errors.New("the mailing's status does not allow this")
	// ErrEmptyAudience: the audience has no customer.
	ErrEmptyAudience = errors.New("the audience is empty")
	// ErrUnknownCustomer: no customer has that id.
	ErrUnknownCustomer = errors.New("unknown customer")
)

// InsufficientCodesError refuses a start: groups lack active codes for the audience.
type InsufficientCodesError struct {
	Audience int64
	// Missing maps a group's name to how many codes it lacks.
	Missing map[string]int64
}

func (e *InsufficientCodesError) Error() string {
	parts := make([]string, 0, len(e.Missing))
	for g, n := range e.Missing {
		parts = append(parts, fmt.Sprintf("%q lacks %d", g, n))
	}
	return fmt.Sprintf("not enough active codes for %d recipients: %s (upload more, or start with send_while_codes_last)",
		e.Audience, strings.Join(parts, ", "))
}

// Sender hands rendered messages to a transport; mailer's transports satisfy it.
type Sender interface {
	Send(ctx context.Context, msgs []mailer.Message) ([]mailer.Result, error)
}

// BatchRef names one enqueue of a batch: its task id derives from all three fields.
type BatchRef struct {
	MailingID int64 `db:"mailing_id" json:"mailing_id"`
	Batch     int   `db:"batch" json:"batch"`
	Attempt   int   `db:"attempt" json:"attempt"`
}

// Enqueuer puts batch tasks on the queue.
type Enqueuer interface {
	EnqueueBatches(ctx context.Context, refs []BatchRef) error
}

// QueueChecker is an Enqueuer that can tell which batches' tasks still wait in the
// queue (pending or scheduled). Reconcile leaves those alone: a batch waiting behind a
// long queue (a slow transport, a large mailing) is not lost, and enqueuing it again
// every ReenqueueAfter would fill the queue with duplicates.
type QueueChecker interface {
	Waiting(ctx context.Context, refs []BatchRef) ([]bool, error)
}

// Alerter is told at once when a mailing pauses because a group ran out of codes.
type Alerter interface {
	GroupExhausted(ctx context.Context, groupID int64, mailingID int64, waiting int)
}

// Audience says who receives a mailing: explicit customer ids, every customer, or the
// customers a segment filter matches when the mailing starts (SPEC §6; stored with its
// groups resolved to ids, so a later rename changes nothing).
type Audience struct {
	CustomerIDs []string         `json:"customer_ids,omitempty"`
	All         bool             `json:"all,omitempty"`
	Segment     *segments.Filter `json:"segment,omitempty"`
}

// Mailing is a mass mailing and its progress.
type Mailing struct {
	ID           int64            `db:"id" json:"id"`
	Name         string           `db:"name" json:"name"`
	Sender       string           `db:"sender" json:"sender"`
	Subject      string           `db:"subject" json:"subject"`
	HTML         string           `db:"html" json:"html"`
	Text         string           `db:"text_body" json:"text"`
	Transport    string           `db:"transport" json:"transport"`
	AudienceJSON json.RawMessage  `db:"audience" json:"-"`
	Audience     Audience         `db:"-" json:"audience"`
	GroupIDsJSON json.RawMessage  `db:"group_ids" json:"-"`
	GroupIDs     map[string]int64 `db:"-" json:"group_ids"`
	Status       string           `db:"status" json:"status"`
	PauseReason  string           `db:"pause_reason" json:"pause_reason,omitempty"`
	// PauseKind says who or what paused it (Pause…): only the system's pauses end by themselves.
	PauseKind string `db:"pause_kind" json:"pause_kind,omitempty"`
	// OnExhaustion is what it does for a recipient a group has no code for (OnExhaustion…).
	OnExhaustion   string `db:"on_exhaustion" json:"on_exhaustion"`
	WhileCodesLast bool   `db:"while_codes_last" json:"send_while_codes_last"`
	BatchSize      int    `db:"batch_size" json:"batch_size"`
	CreatedBy      string `db:"created_by" json:"created_by"`
	// CreatedByWho is who created the mailing, as they were then.
	CreatedByWho auth.Actor `db:"created_by_who" json:"created_by_who"`
	// Events are the mailing's steps (created, started, paused, resumed, cancelled) with
	// who took them; only Get fills them in.
	Events     []Event    `db:"-" json:"events,omitempty"`
	CreatedAt  time.Time  `db:"created_at" json:"created_at"`
	StartedAt  *time.Time `db:"started_at" json:"started_at"`
	FinishedAt *time.Time `db:"finished_at" json:"finished_at"`
	// OutboxComplete says every recipient has its outbox row (and its batch); false
	// for the few seconds a large audience is being written after the start.
	OutboxComplete  bool      `db:"outbox_complete" json:"outbox_complete"`
	OutboxCursor    string    `db:"outbox_cursor" json:"-"`
	OutboxNextBatch int       `db:"outbox_next_batch" json:"-"`
	Progress        *Progress `db:"-" json:"progress,omitempty"`
}

// Progress counts a mailing's recipients by state and its issued codes.
type Progress struct {
	Recipients int64 `db:"recipients" json:"recipients"`
	Queued     int64 `db:"queued" json:"queued"`
	Sent       int64 `db:"sent" json:"sent"`
	Failed     int64 `db:"failed" json:"failed"`
	Skipped    int64 `db:"skipped" json:"skipped"`
	// Fallback counts the sent recipients who got a fallback text instead of a code
	// (they are among Sent).
	Fallback int64 `db:"fallback" json:"fallback"`
	// CodesIssued maps group name to the codes this mailing issued from it.
	CodesIssued map[string]int64 `db:"-" json:"codes_issued"`
	// MessagesPerSecond is the send rate from start to the last outcome (or now).
	MessagesPerSecond float64 `db:"-" json:"messages_per_second"`
}

func (m *Mailing) source() macros.Source {
	return macros.Source{Subject: m.Subject, HTML: m.HTML, Text: m.Text}
}

// Config configures the Service.
type Config struct {
	// BatchSize is how many recipients one task carries (default 500).
	BatchSize int
	// Lease is how long a batch's lease lasts unless renewed: a delivery renews it every
	// third of this while it works, and another may take the batch over once it has
	// expired (default 2 minutes).
	Lease time.Duration
	// ReenqueueAfter is how long an open batch may sit without a live lease before the
	// reconciler enqueues it again (default 5 minutes).
	ReenqueueAfter time.Duration
	// ReservationTimeout is the age past which a claim reservation counts as left by a
	// crashed worker and its codes go back to the pool (default 1 minute). Any value is
	// safe: a live claim whose reservation was taken aborts without issuing.
	ReservationTimeout time.Duration
	// OutboxChunk is about how many recipients one transaction of a mailing's outbox
	// writes (whole batches; default 50,000): the first chunk's batches are sent while
	// the next is written.
	OutboxChunk int
	// OutboxStale is how long an unfinished outbox may go without a chunk before the
	// reconciler takes over its writing (default 30 s): the writer died.
	OutboxStale time.Duration
	// Limits bound a mailing's templates (macros per template) and each rendered
	// message (MAX_MESSAGE_BYTES; default macros.DefaultMaxMessageBytes): a template
	// over them is refused at creation, a message over them fails its recipient.
	Limits macros.Limits
	// BatchBytes is about the most bytes of rendered messages a batch holds at once
	// (MAILING_BATCH_BYTES, default 32 MiB): a batch renders and hands its messages to
	// the transport in chunks of this size, so its memory stays bounded whatever the
	// templates and customer fields (one message may exceed it alone, up to Limits).
	BatchBytes int
}

// Deps are what a Service works with. DB and Groups are required; the others may be
// nil in processes that do without them.
type Deps struct {
	// DB holds the mailings' tables.
	DB *sqlx.DB
	// Groups claims, repeats and releases codes, and looks groups up.
	Groups *groups.Store
	// Enqueuer puts batch tasks on the queue; nil in processes that start no mailing.
	Enqueuer Enqueuer
	// Sender hands messages to the transport; nil in processes that do not send (web).
	Sender Sender
	// Alerter is told when a mailing pauses for lack of codes; nil: nobody is.
	Alerter Alerter
	// Segments answers segment audiences; without it a mailing with a segment
	// audience is refused at creation.
	Segments *segments.Service
	// Log receives the service's logs (default: discarded).
	Log *slog.Logger
}

// Service runs mailings.
type Service struct {
	cfg      Config
	db       *sqlx.DB
	groups   *groups.Store
	enqueuer Enqueuer
	sender   Sender
	alerter  Alerter
	segments *segments.Service
	log      *slog.Logger
	tmpl     *templateCache
}

// New returns a Service with cfg's defaults filled in.
func New(cfg Config, deps Deps) *Service {
	cfg.BatchSize = cmp.Or(cfg.BatchSize, 500)
	cfg.Lease = cmp.Or(cfg.Lease, 2*time.Minute)
	cfg.ReenqueueAfter = cmp.Or(cfg.ReenqueueAfter, 5*time.Minute)
	cfg.ReservationTimeout = cmp.Or(cfg.ReservationTimeout, time.Minute)
	cfg.OutboxChunk = cmp.Or(cfg.OutboxChunk, 50_000)
	cfg.OutboxStale = cmp.Or(cfg.OutboxStale, 30*time.Second)
	cfg.BatchBytes = cmp.Or(cfg.BatchBytes, 32<<20)
	if deps.Log == nil {
		deps.Log = slog.New(slog.DiscardHandler)
	}
	return &Service{cfg: cfg, db: deps.DB, groups: deps.Groups, enqueuer: deps.Enqueuer, sender: deps.Sender,
		alerter: deps.Alerter, segments: deps.Segments, log: deps.Log, tmpl: newTemplateCache(cfg.Limits)}
}

// Input is a new mailing.
type Input struct {
	Name      string   `json:"name"`
	Sender    string   `json:"sender"`
	Subject   string   `json:"subject"`
	HTML      string   `json:"html"`
	Text      string   `json:"text"`
	Transport string   `json:"transport"`
	Audience  Audience `json:"audience"`
	BatchSize int      `json:"batch_size"`
	// OnExhaustion: "pause" (default), "skip" or "fallback" (every promocode macro
	// then needs a fallback='…' text).
	OnExhaustion string `json:"on_exhaustion,omitempty"`
}

func (in *Input) validate() error {
	n := len([]rune(strings.TrimSpace(in.Name)))
	switch {
	case n == 0 || n > 200:
		return &groups.InvalidError{Field: "name", Reason: "must be 1–200 characters"}
	case strings.TrimSpace(in.HTML) == "" && strings.TrimSpace(in.Text) == "":
		return &groups.InvalidError{Field: "html", Reason: "give an HTML or a text part (or both)"}
	case in.Subject == "":
		return &groups.InvalidError{Field: "subject", Reason: "is required"}
	case audienceKinds(in.Audience) > 1:
		return &groups.InvalidError{Field: "audience", Reason: "give one of customer_ids, all, segment"}
	case audienceKinds(in.Audience) == 0:
		return &groups.InvalidError{Field: "audience", Reason: "give customer_ids, set all, or give a segment filter"}
	case in.BatchSize < 0 || in.BatchSize > 10000:
		return &groups.InvalidError{Field: "batch_size", Reason: "must be 1–10000"}
	case in.OnExhaustion != "" && in.OnExhaustion != OnExhaustionPause && in.OnExhaustion != OnExhaustionSkip && in.OnExhaustion != OnExhaustionFallback:
		return &groups.InvalidError{Field: "on_exhaustion", Reason: "must be pause, skip or fallback"}
	case in.Transport != "" && in.Transport != "default":
		return &groups.InvalidError{Field: "transport", Reason: "only the worker's configured transport, \"default\", exists"}
	}
	if _, err := mail.ParseAddress(in.Sender); err != nil {
		return &groups.InvalidError{Field: "sender", Reason: fmt.Sprintf("%q is not an address like \"Shop <news@shop.example>\"", in.Sender)}
	}
	for i, id := range in.Audience.CustomerIDs {
		if err := customers.CheckCustomerID(id); err != nil {
			return &groups.InvalidError{Field: fmt.Sprintf("audience.customer_ids[%d]", i), Reason: err.Error()}
		}
	}
	return nil
}

func audienceKinds(a Audience) int {
	n := 0
	for _, b := range []bool{len(a.CustomerIDs) > 0, a.All, a.Segment != nil} {
		if b {
			n++
		}
	}
	return n
}

// checkSegment validates a segment audience and resolves its groups; a bad node is a
// *segments.InvalidError whose path starts at the mailing ($.audience.segment…).
func (s *Service) checkSegment(ctx context.Context, f *segments.Filter) error {
	if s.segments == nil {
		return &groups.InvalidError{Field: "audience.segment", Reason: "segment audiences are not available in this process"}
	}
	if err := s.segments.Check(ctx, f); err != nil {
		var ie *segments.InvalidError
		if errors.As(err, &ie) {
			return &segments.InvalidError{Path: "$.audience.segment" + strings.TrimPrefix(ie.Path, "$"), Reason: ie.Reason}
		}
		return err
	}
	return nil
}

// Create validates a mailing (fields, then every template problem at once, through
// macros) and stores it as a draft. Errors: *groups.InvalidError,
// *macros.ValidationError.
func (s *Service) Create(ctx context.Context, actor string, in Input) (*Mailing, error) {
	if err := in.validate(); err != nil {
		return nil, err
	}
	if in.Audience.Segment != nil {
		if err := s.checkSegment(ctx, in.Audience.Segment); err != nil {
			return nil, err
		}
	}
	src := macros.Source{Subject: in.Subject, HTML: in.HTML, Text: in.Text}
	t, err := macros.CompileLimits(ctx, src, s.groups, s.cfg.Limits)
	if err != nil {
		return nil, err
	}
	if in.OnExhaustion == OnExhaustionFallback {
		for i, g := range t.NewCodeGroups() {
			if !t.HasFallback(i) {
				return nil, &groups.InvalidError{Field: "on_exhaustion", Reason: fmt.Sprintf(
					"fallback needs a fallback text on every promocode macro: add fallback='…' to promocode('%s')", g)}
			}
		}
	}
	ids, err := s.templateGroups(ctx, t)
	if err != nil {
		return nil, err
	}
	aud, _ := json.Marshal(in.Audience)
	gids, _ := json.Marshal(ids)
	tx, err := s.db.BeginTxx(ctx, nil)
	if err != nil {
		return nil, err
	}
	defer tx.Rollback()
	who := auth.ActorFrom(ctx, actor)
	var id int64
	err = tx.GetContext(ctx, &id, `
		INSERT INTO mailings (name, sender, subject, html, text_body, transport, audience, group_ids, batch_size, created_by,
			created_by_kind, created_by_user_id, created_by_name, created_by_email, on_exhaustion)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15) RETURNING id`,
		strings.TrimSpace(in.Name), in.Sender, in.Subject, in.HTML, in.Text, cmp.Or(in.Transport, "default"),
		string(aud), string(gids), cmp.Or(in.BatchSize, s.cfg.BatchSize), actor, who.Kind, who.UserID, who.Name, who.Email,
		cmp.Or(in.OnExhaustion, OnExhaustionPause))
	if err != nil {
		return nil, fmt.Errorf("creating mailing: %w", err)
	}
	if err := recordEvent(ctx, tx, id, EventCreate, actor, ""); err != nil {
		return nil, err
	}
	if err := tx.Commit(); err != nil {
		return nil, err
	}
	return s.Get(ctx, id)
}

var mailingColumns = `id, name, sender, subject, html, text_body, transport, audience, group_ids, status, pause_reason, pause_kind, on_exhaustion,
	while_codes_last, batch_size, created_by, created_at, started_at, finished_at, outbox_complete, outbox_cursor, outbox_next_batch, ` +
	auth.ActorSQL("created_by", "created_by") + ` AS created_by_who`

func getMailing(ctx context.Context, q sqlx.QueryerContext, id int64, lock string) (*Mailing, error) {
	var m Mailing
	err := sqlx.GetContext(ctx, q, &m, `SELECT `+mailingColumns+` FROM mailings WHERE id = $1 `+lock, id)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("mailing %d: %w", id, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("reading mailing %d: %w", id, err)
	}
	if err := json.Unmarshal(m.AudienceJSON, &m.Audience); err != nil {
		return nil, err
	}
	if err := json.Unmarshal(m.GroupIDsJSON, &m.GroupIDs); err != nil {
		return nil, err
	}
	return &m, nil
}

// templateGroups resolves a template's groups to ids, by GroupKey: the live group of
// each name it draws new codes from, and for last_promocode the live group or else
// the most recently archived one of that name (its customers' codes still repeat).
func (s *Service) templateGroups(ctx context.Context, t *macros.Template) (map[string]int64, error) {
	ids, err := s.groups.LiveIDs(ctx, t.NewCodeGroups())
	if err != nil {
		return nil, err
	}
	if len(t.RepeatGroups()) > 0 {
		known, err := s.groups.KnownIDs(ctx, t.RepeatGroups())
		if err != nil {
			return nil, err
		}
		for k, id := range known {
			ids[k] = id
		}
	}
	return ids, nil
}

// Get returns a mailing with its progress. Errors: ErrNotFound.
func (s *Service) Get(ctx context.Context, id int64) (*Mailing, error) {
	m, err := getMailing(ctx, s.db, id, "")
	if err != nil {
		return nil, err
	}
	p := &Progress{CodesIssued: map[string]int64{}}
	err = s.db.GetContext(ctx, p, `
		SELECT coalesce(sum(recipients), 0) AS recipients, coalesce(sum(sent), 0) AS sent,
		       coalesce(sum(failed), 0) AS failed, coalesce(sum(skipped), 0) AS skipped,
		       coalesce(sum(recipients - sent - failed - skipped), 0) AS queued, coalesce(sum(fallback), 0) AS fallback
		FROM mailing_batches WHERE mailing_id = $1`, id)
	if err != nil {
		return nil, fmt.Errorf("reading progress of mailing %d: %w", id, err)
	}
	if err := s.codesIssued(ctx, id, p.CodesIssued); err != nil {
		return nil, err
	}
	if m.StartedAt != nil {
		end := time.Now()
		if m.FinishedAt != nil {
			end = *m.FinishedAt
		}
		if d := end.Sub(*m.StartedAt).Seconds(); d > 0 {
			p.MessagesPerSecond = float64(p.Sent) / d
		}
	}
	m.Progress = p
	if m.Events, err = s.events(ctx, id); err != nil {
		return nil, err
	}
	return m, nil
}

// codesIssued fills byName with the codes the mailing issued from each group, by the
// group's current name (a removed group is left out).
func (s *Service) codesIssued(ctx context.Context, id int64, byName map[string]int64) error {
	var counts []struct {
		GroupID int64 `db:"group_id"`
		Issued  int64 `db:"issued"`
	}
	if err := s.db.SelectContext(ctx, &counts, `
		SELECT group_id, sum(issued) AS issued FROM mailing_group_counts
		WHERE mailing_id = $1 GROUP BY group_id ORDER BY group_id`, id); err != nil {
		return fmt.Errorf("reading the codes issued by mailing %d: %w", id, err)
	}
	if len(counts) == 0 {
		return nil
	}
	ids := make([]int64, len(counts))
	for i, c := range counts {
		ids[i] = c.GroupID
	}
	names, err := s.groups.Names(ctx, ids)
	if err != nil {
		return err
	}
	for _, c := range counts {
		if name, ok := names[c.GroupID]; ok {
			byName[name] = c.Issued
		}
	}
	return nil
}

// List returns mailings, newest first (without progress).
func (s *Service) List(ctx context.Context, limit int) ([]Mailing, error) {
	if limit <= 0 || limit > 500 {
		limit = 100
	}
	out := []Mailing{}
	if err := s.db.SelectContext(ctx, &out, `SELECT `+mailingColumns+` FROM mailings ORDER BY id DESC LIMIT $1`, limit); err != nil {
		return nil, err
	}
	for i := range out {
		json.Unmarshal(out[i].AudienceJSON, &out[i].Audience)
		json.Unmarshal(out[i].GroupIDsJSON, &out[i].GroupIDs)
	}
	return out, nil
}
