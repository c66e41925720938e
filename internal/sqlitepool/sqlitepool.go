// Package sqlitepool opens SQLite the way every Delta CI store uses it: WAL,
// a busy timeout, foreign keys, one writer connection whose transactions
// begin IMMEDIATE (so writers queue instead of failing), and a pool of
// read-only connections.
package sqlitepool

import (
	"context"
	"database/sql"
	"net/url"
	"os"
	"path/filepath"
	"runtime"

	_ "modernc.org/sqlite" // registers the "sqlite" driver

	"github.com/deltaci/deltaci/internal/core"
)

// DSN is the connection string for path, for the writer or the readers.
func DSN(path string, readOnly bool) string {
	q := url.Values{}
	q.Add("_pragma", "busy_timeout(10000)")
	q.Add("_pragma", "foreign_keys(1)")
	q.Add("_pragma", "synchronous(NORMAL)")
	if readOnly {
		q.Add("_pragma", "query_only(1)")
	} else {
		q.Add("_pragma", "journal_mode(WAL)")
		q.Set("_txlock", "immediate")
	}
	return "file:" + path + "?" + q.Encode()
}

// OpenWriter opens (creating the file and its directory if needed) the
// single writer connection of the database at path.
func OpenWriter(ctx context.Context, path string) (*sql.DB, error) {
	if path == "" {
		return nil, core.E(core.KindInvalid, "open sqlite", "database path is empty")
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, core.Wrap(core.KindInvalid, "open sqlite", err)
	}
	w, err := sql.Open("sqlite", DSN(path, false))
	if err != nil {
		return nil, core.Wrap(core.KindInternal, "open sqlite", err)
	}
	w.SetMaxOpenConns(1)
	if err := w.PingContext(ctx); err != nil {
		w.Close()
		return nil, core.Wrap(core.KindUnavailable, "open sqlite "+path, err)
	}
	return w, nil
}

// OpenReaders opens the read-only pool of the database at path.
func OpenReaders(path string) (*sql.DB, error) {
	r, err := sql.Open("sqlite", DSN(path, true))
	if err != nil {
		return nil, core.Wrap(core.KindInternal, "open sqlite", err)
	}
	r.SetMaxOpenConns(max(4, runtime.NumCPU()))
	return r, nil
}
