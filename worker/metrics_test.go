package worker

import (
	"context"
	"errors"
	"testing"

	"github.com/hibiken/asynq"

	"promopool/metrics"
)

// observations returns how many runs of taskType the latency histogram holds, by result.
func observations(t *testing.T, taskType string) map[string]uint64 {
	t.Helper()
	mfs, err := metrics.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]uint64{}
	for _, mf := range mfs {
		if mf.GetName() != "promopool_task_duration_seconds" {
			continue
		}
		for _, m := range mf.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["type"] == taskType {
				out[labels["result"]] += m.GetHistogram().GetSampleCount()
			}
		}
	}
	return out
}

// TestMeasureTasks: each run is observed in the latency histogram under its result and
// the handler's error passes through unchanged. (Retry counts come from Asynq's
// context, which only a real server sets; the fault suite sees them grow.)
func TestMeasureTasks(t *testing.T) {
	fail := errors.New("boom")
	h := measureTasks()(asynq.HandlerFunc(func(ctx context.Context, t *asynq.Task) error {
		if string(t.Payload()) == "fail" {
			return fail
		}
		return nil
	}))
	for range 2 {
		if err := h.ProcessTask(context.Background(), asynq.NewTask("test:measure", []byte("ok"))); err != nil {
			t.Fatal(err)
		}
	}
	if err := h.ProcessTask(context.Background(), asynq.NewTask("test:measure", []byte("fail"))); !errors.Is(err, fail) {
		t.Fatalf("middleware changed the error: %v", err)
	}
	if got := observations(t, "test:measure"); got["ok"] != 2 || got["error"] != 1 {
		t.Fatalf("observations %v, want ok 2, error 1", got)
	}
}
