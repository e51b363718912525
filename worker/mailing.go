package worker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/hibiken/asynq"

	"promopool/mailings"
)

// TypeMailingBatch is the task that sends one batch of a mailing.
const TypeMailingBatch = "mailing:batch"

// QueueMailings is the Asynq queue of mailing batches.
const QueueMailings = "mailings"

// NewMailingBatchTask returns the task for one enqueue of a batch. Its id derives from
// (mailing, batch, attempt): enqueuing the same attempt twice is refused by Asynq.
func NewMailingBatchTask(ref mailings.BatchRef) (*asynq.Task, error) {
	payload, err := json.Marshal(ref)
	if err != nil {
		return nil, err
	}
	return asynq.NewTask(TypeMailingBatch, payload,
		asynq.TaskID(taskID(ref)),
		asynq.Queue(QueueMailings), asynq.MaxRetry(20), asynq.Timeout(10*time.Minute)), nil
}

// Enqueuer puts mailing batches on Asynq; it satisfies mailings.Enqueuer, and with an
// Inspector mailings.QueueChecker too.
type Enqueuer struct {
	Client *asynq.Client
	// Inspector, when set, lets the reconciler see which batches still wait in the queue.
	Inspector *asynq.Inspector
}

// Waiting implements mailings.QueueChecker: a batch waits when the task of its current
// attempt is pending or scheduled. A task that is active, retrying, archived or gone
// does not count (the lease, the retry or the reconciler's new attempt covers it), nor
// does any task while the queue is missing from Asynq's list of queues (after Redis lost
// its data, until a fresh client enqueues to it).
func (e Enqueuer) Waiting(ctx context.Context, refs []mailings.BatchRef) ([]bool, error) {
	out := make([]bool, len(refs))
	if e.Inspector == nil {
		return out, nil
	}
	for i, ref := range refs {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		info, err := e.Inspector.GetTaskInfo(QueueMailings, taskID(ref))
		switch {
		case errors.Is(err, asynq.ErrTaskNotFound) || errors.Is(err, asynq.ErrQueueNotFound):
		case err != nil:
			return nil, fmt.Errorf("reading task of batch %d of mailing %d: %w", ref.Batch, ref.MailingID, err)
		default:
			out[i] = info.State == asynq.TaskStatePending || info.State == asynq.TaskStateScheduled
		}
	}
	return out, nil
}

func taskID(ref mailings.BatchRef) string {
	return fmt.Sprintf("mailing:%d:batch:%d:%d", ref.MailingID, ref.Batch, ref.Attempt)
}

// EnqueueBatches implements mailings.Enqueuer. A task id already queued is not an error.
func (e Enqueuer) EnqueueBatches(ctx context.Context, refs []mailings.BatchRef) error {
	for _, ref := range refs {
		t, err := NewMailingBatchTask(ref)
		if err != nil {
			return err
		}
		if _, err := e.Client.EnqueueContext(ctx, t); err != nil && !errors.Is(err, asynq.ErrTaskIDConflict) {
			return fmt.Errorf("enqueuing batch %d of mailing %d: %w", ref.Batch, ref.MailingID, err)
		}
	}
	return nil
}

// MailingBatchHandler runs mailing:batch tasks.
type MailingBatchHandler struct {
	Mailings *mailings.Service
}

// ProcessTask implements asynq.Handler. A payload that does not parse or a mailing that
// no longer exists cannot succeed on retry (SkipRetry); transient send failures and
// database errors are retried.
func (h *MailingBatchHandler) ProcessTask(ctx context.Context, t *asynq.Task) error {
	var ref mailings.BatchRef
	if err := json.Unmarshal(t.Payload(), &ref); err != nil || ref.MailingID <= 0 || ref.Batch < 0 {
		return fmt.Errorf("bad mailing:batch payload: %v: %w", err, asynq.SkipRetry)
	}
	err := h.Mailings.ProcessBatch(ctx, ref.MailingID, ref.Batch)
	if errors.Is(err, mailings.ErrNotFound) {
		return fmt.Errorf("%w: %w", err, asynq.SkipRetry)
	}
	return err
}
