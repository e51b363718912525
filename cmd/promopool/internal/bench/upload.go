package bench

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/lib/pq"

	"promopool/client"
)

// UploadConfig configures `promopool bench upload`.
type UploadConfig struct {
	// URL is the benchmark database (created when missing; never "postgres").
	URL string
	// Exe is the promopool binary whose web process is measured.
	Exe string
	// N is how many lines to upload (default 10,000,000).
	N int
	// DupEvery makes every DupEvery-th line repeat an earlier code (default 20: 5%).
	DupEvery int
	// Columns, when more than 0, uploads a CSV whose lines carry that many extra
	// columns (pin1…pinN, 6 digits each) beside the code, stored with each code; the raw
	// ceiling stays the plain load, so the ratio shows what the columns cost.
	Columns int
}

// UploadResult holds the figures.
type UploadResult struct {
	N, Accepted, Duplicates int64
	Columns                 int
	API, Raw                time.Duration
	PeakRSS                 int64
	Settings                string
}

// APIRate is codes per second through the API (lines uploaded / time).
func (r *UploadResult) APIRate() float64 { return float64(r.N) / r.API.Seconds() }

// RawRate is rows per second of the raw SQL load.
func (r *UploadResult) RawRate() float64 { return float64(r.N) / r.Raw.Seconds() }

// Print writes the report.
func (r *UploadResult) Print(w io.Writer) {
	fmt.Fprintf(w, "postgres: %s\n", r.Settings)
	fmt.Fprintf(w, "lines %d: accepted %d, duplicates %d, extra columns %d\n", r.N, r.Accepted, r.Duplicates, r.Columns)
	fmt.Fprintf(w, "api upload:  %8.2f s  %10.0f codes/s\n", r.API.Seconds(), r.APIRate())
	fmt.Fprintf(w, "raw COPY+INSERT ON CONFLICT: %8.2f s  %10.0f codes/s\n", r.Raw.Seconds(), r.RawRate())
	fmt.Fprintf(w, "api / raw: %.0f%%\n", 100*r.APIRate()/r.RawRate())
	fmt.Fprintf(w, "web peak RSS: %.1f MB\n", float64(r.PeakRSS)/1e6)
}

// genCodes writes n lines: unique 12-character codes, with every dupEvery-th line a
// repeat of an earlier one. Deterministic, so the API and raw runs load the same rows.
func genCodes(n, dupEvery int, emit func(line int, code []byte) error) error {
	buf := make([]byte, 0, 32)
	code := func(i uint64) []byte {
		// A bijective scramble of i, printed in base 36 and padded: unique per i.
		x := (i*0x9E3779B97F4A7C15 ^ 0x5DEECE66D) & (1<<62 - 1)
		buf = append(buf[:0], "PP"...)
		buf = strconv.AppendUint(buf, x, 36)
		return buf
	}
	u := uint64(0)
	for line := 1; line <= n; line++ {
		var c []byte
		if dupEvery > 0 && line%dupEvery == 0 && u > 0 {
			c = code(u / 2)
		} else {
			c = code(u)
			u++
		}
		if err := emit(line, c); err != nil {
			return err
		}
	}
	return nil
}

// Upload runs the upload benchmark.
func Upload(ctx context.Context, cfg UploadConfig) (*UploadResult, error) {
	if cfg.N <= 0 {
		cfg.N = 10_000_000
	}
	if cfg.DupEvery == 0 {
		cfg.DupEvery = 20
	}
	env, err := NewEnv(ctx, cfg.URL)
	if err != nil {
		return nil, err
	}
	defer env.Close()
	res := &UploadResult{N: int64(cfg.N), Columns: cfg.Columns}
	if res.Settings, err = Settings(ctx, env.DB); err != nil {
		return nil, err
	}

	key := "bench_" + randomHex(16)
	web, err := StartProcess(ctx, cfg.Exe, []string{"DATABASE_URL=" + cfg.URL, "DATABASE_SEARCH_PATH=" + env.Schema,
		"HTTP_ADDR=127.0.0.1:0", "API_KEYS=bench:" + key + ":admin", "MAX_UPLOAD_BYTES=4294967296"}, "web")
	if err != nil {
		return nil, err
	}
	defer web.Stop()
	api, err := client.New("http://"+web.Addr, key)
	if err != nil {
		return nil, err
	}
	group, err := client.Check(api.CreateGroupWithResponse(ctx, client.GroupInput{Name: new("bench")}))
	if err != nil {
		return nil, fmt.Errorf("creating the group: %w", err)
	}

	if _, err := env.DB.ExecContext(ctx, `CHECKPOINT`); err != nil {
		return nil, err
	}
	pr, pw := io.Pipe()
	go func() {
		bw := make([]byte, 0, 1<<16)
		if cfg.Columns > 0 {
			bw = append(bw, "code"...)
			for i := 1; i <= cfg.Columns; i++ {
				bw = append(append(bw, ",pin"...), strconv.Itoa(i)...)
			}
			bw = append(bw, '\n')
		}
		err := genCodes(cfg.N, cfg.DupEvery, func(line int, c []byte) error {
			bw = append(bw, c...)
			for i := 1; i <= cfg.Columns; i++ {
				bw = append(bw, ',')
				bw = strconv.AppendInt(bw, int64(100000+(line*7919+i)%900000), 10)
			}
			bw = append(bw, '\n')
			if len(bw) > 60000 {
				_, err := pw.Write(bw)
				bw = bw[:0]
				return err
			}
			return nil
		})
		if err == nil && len(bw) > 0 {
			_, err = pw.Write(bw)
		}
		pw.CloseWithError(err)
	}()
	start := time.Now()
	ctype := "text/plain"
	if cfg.Columns > 0 {
		ctype = "text/csv"
	}
	up, err := client.Check(api.UploadCodesWithBodyWithResponse(ctx, *group.JSON201.Id, nil, ctype, pr))
	if err != nil {
		return nil, fmt.Errorf("uploading: %w", err)
	}
	res.API = time.Since(start)
	res.Accepted, res.Duplicates = int64(*up.JSON201.Accepted), int64(*up.JSON201.Duplicates)
	if res.PeakRSS, err = web.PeakRSS(); err != nil {
		return nil, err
	}
	web.Stop()

	if res.Raw, err = rawLoad(ctx, env, cfg); err != nil {
		return nil, fmt.Errorf("raw load: %w", err)
	}
	return res, nil
}

// rawLoad is the ceiling: the same rows COPYed into an unlogged staging table, then
// INSERT … SELECT … ON CONFLICT DO NOTHING into a table shaped like codes (bigint
// primary key, unique text COLLATE "C"), in one transaction, with no promopool code in
// the way. It sorts by code as promopool does, since that is the fastest plain-SQL load
// measured; without the sort the baseline would flatter promopool.
func rawLoad(ctx context.Context, env *Env, cfg UploadConfig) (time.Duration, error) {
	if _, err := env.DB.ExecContext(ctx, `CREATE TABLE raw_codes (id bigint PRIMARY KEY, code text COLLATE "C" NOT NULL UNIQUE)`); err != nil {
		return 0, err
	}
	if _, err := env.DB.ExecContext(ctx, `CHECKPOINT`); err != nil {
		return 0, err
	}
	start := time.Now()
	tx, err := env.DB.BeginTx(ctx, nil)
	if err != nil {
		return 0, err
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, `CREATE UNLOGGED TABLE raw_stage (ord bigint, code text)`); err != nil {
		return 0, err
	}
	stmt, err := tx.PrepareContext(ctx, pq.CopyIn("raw_stage", "ord", "code"))
	if err != nil {
		return 0, err
	}
	err = genCodes(cfg.N, cfg.DupEvery, func(line int, c []byte) error {
		_, err := stmt.ExecContext(ctx, line, string(c))
		return err
	})
	if err != nil {
		return 0, err
	}
	if _, err := stmt.ExecContext(ctx); err != nil {
		return 0, err
	}
	stmt.Close()
	if _, err := tx.ExecContext(ctx, `SET LOCAL work_mem = '256MB'`); err != nil {
		return 0, err
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO raw_codes SELECT ord, code FROM raw_stage ORDER BY code COLLATE "C", ord ON CONFLICT (code) DO NOTHING`); err != nil {
		return 0, err
	}
	if _, err := tx.ExecContext(ctx, `DROP TABLE raw_stage`); err != nil {
		return 0, err
	}
	if err := tx.Commit(); err != nil {
		return 0, err
	}
	return time.Since(start), nil
}
