package worker

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/hibiken/asynq"

	"promopool/checkout"
)

// TypeRedemptionWebhooks delivers the redemption webhooks that are due (the outbox of
// package checkout). The payload is empty: every run delivers whatever is due.
const TypeRedemptionWebhooks = "checkout:webhooks"

// NewRedemptionWebhooksTask returns the task. Asynq keeps one pending at a time
// (Unique for a few seconds): a burst of redemptions enqueues one delivery run, not one
// per redemption.
func NewRedemptionWebhooksTask() *asynq.Task {
	return asynq.NewTask(TypeRedemptionWebhooks, nil, asynq.Unique(2*time.Second), asynq.MaxRetry(3), asynq.Timeout(2*time.Minute))
}

// WebhookDeliverer is what the handler needs: checkout.Deliverer satisfies it.
type WebhookDeliverer interface {
	DeliverDue(ctx context.Context) (checkout.DeliverResult, error)
}

// RedemptionWebhooksHandler runs a delivery. A webhook that fails is rescheduled in
// its row (backoff), so the task itself only fails on a database error.
type RedemptionWebhooksHandler struct {
	Deliverer WebhookDeliverer
}

// ProcessTask implements asynq.Handler.
func (h *RedemptionWebhooksHandler) ProcessTask(ctx context.Context, _ *asynq.Task) error {
	_, err := h.Deliverer.DeliverDue(ctx)
	return err
}

// WebhookEnqueuer enqueues a delivery run when webhooks are written; it satisfies
// checkout.Notifier.
type WebhookEnqueuer struct {
	Client *asynq.Client
}

// WebhooksWritten implements checkout.Notifier.
func (e WebhookEnqueuer) WebhooksWritten(ctx context.Context, _ []int64) error {
	_, err := e.Client.EnqueueContext(ctx, NewRedemptionWebhooksTask())
	if errors.Is(err, asynq.ErrDuplicateTask) {
		return nil // a run is already pending: it will send these too
	}
	if err != nil {
		return fmt.Errorf("enqueueing the redemption webhooks: %w", err)
	}
	return nil
}
