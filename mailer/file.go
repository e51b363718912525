package mailer

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"
)

// FileConfig configures the file transport, for development.
type FileConfig struct {
	// Dir is the folder that receives one <escaped ID>.eml file per
	// message. It is created if missing. Required.
	Dir string
}

// File writes each message as an .eml file named after its ID. A file is
// written to a temporary name and renamed, so readers never see half a
// message and a resend replaces the earlier file.
type File struct {
	dir string
	log *slog.Logger
	now func() time.Time
}

// NewFile returns a file transport, creating cfg.Dir. It returns an error
// wrapping ErrConfig when Dir is empty or cannot be created.
func NewFile(cfg FileConfig, log *slog.Logger) (*File, error) {
	if cfg.Dir == "" {
		return nil, fmt.Errorf("%w: file: dir is required", ErrConfig)
	}
	if err := os.MkdirAll(cfg.Dir, 0o750); err != nil {
		return nil, fmt.Errorf("%w: file: %w", ErrConfig, err)
	}
	return &File{dir: cfg.Dir, log: orDiscard(log).With(slog.String("transport", "file")), now: time.Now}, nil
}

// Path returns the file that m is written to.
func (f *File) Path(m *Message) string {
	return filepath.Join(f.dir, escapeID(m.ID)+".eml")
}

// Send writes each message. Invalid messages are Rejected, write failures
// Temporary, messages left when ctx ends Temporary. It returns no error.
func (f *File) Send(ctx context.Context, msgs []Message) ([]Result, error) {
	results := make([]Result, len(msgs))
	for i := range msgs {
		m := &msgs[i]
		if err := ctx.Err(); err != nil {
			results[i] = Result{Outcome: Temporary, Err: &SendError{Stage: "write", Err: err}}
			continue
		}
		data, err := m.Bytes(f.now())
		if err != nil {
			results[i] = Result{Outcome: Rejected, Err: err}
		} else if err := writeAtomic(f.Path(m), data); err != nil {
			results[i] = Result{Outcome: Temporary, Err: &SendError{Stage: "write", Err: err}}
		}
		if results[i].Outcome != Sent {
			logFailure(f.log, "file", m, results[i])
		}
	}
	logBatch(f.log, "file", results)
	return results, nil
}

// writeAtomic writes data to a temporary file beside path, syncs it and
// renames it over path.
func writeAtomic(path string, data []byte) (err error) {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".tmp-*.eml")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	if _, err = tmp.Write(data); err != nil {
		return err
	}
	if err = tmp.Sync(); err != nil {
		return err
	}
	if err = tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// Close does nothing; files are complete when Send returns.
func (f *File) Close() error { return nil }
