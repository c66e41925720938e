package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/deltaci/deltaci/internal/core"
	"github.com/deltaci/deltaci/internal/store/postgres/pgdb"
)

// tx is one read-committed write transaction on a pooled connection that
// spends as few round trips as it can: BEGIN travels with the first
// statement, and the events rows, which nothing reads back within the
// transaction, travel with COMMIT as one statement. A transaction of k
// statements costs k round trips plus one, where pgx.Tx costs k plus two
// plus one per event.
type tx struct {
	conn   *pgxpool.Conn
	begun  bool
	setup  []string     // the transaction's settings, sent with BEGIN
	events []core.Event // written with COMMIT
	notify bool         // wake the queue's listeners, with COMMIT
	// single is a transaction of one statement, sent without BEGIN: it
	// commits with the batch (Driver.WriteOne).
	single bool
	after  []afterRead // reads sent after COMMIT, with it
	// groups, when set on a one-statement transaction, sends its
	// statement with others of the same settings (group); conn is then
	// acquired only to send it alone or for the reads after it.
	groups *groups
	pool   *pgxpool.Pool
}

// grouped sends the one statement of a transaction with groups through
// its group. It reports false when the statement must go on its own
// connection instead: its group failed because of another statement.
func (t *tx) grouped(ctx context.Context, sql string, args []any) (*result, bool, error) {
	if t.groups == nil || !t.single {
		return nil, false, nil
	}
	res, err := t.groups.get(t.setup).do(ctx, sql, args)
	if errors.Is(err, errAlone) {
		return nil, false, t.acquire(ctx)
	}
	t.begun = true
	return res, true, err
}

// acquire gives the transaction a connection of its own.
func (t *tx) acquire(ctx context.Context) error {
	if t.conn != nil {
		return nil
	}
	conn, err := t.pool.Acquire(ctx)
	if err != nil {
		return err
	}
	t.conn = conn
	return nil
}

// release returns an acquired connection to the pool.
func (t *tx) release() {
	if t.conn != nil {
		t.conn.Release()
		t.conn = nil
	}
}

// afterRead is a query that runs once the transaction has committed, in
// the same round trip as COMMIT; read gets its rows.
type afterRead struct {
	sql  string
	args []any
	read func(pgx.Rows) error
}

// capture is a pgdb.DBTX that keeps the statement a generated query would
// run instead of running it, so that it can be queued on a batch.
type capture struct {
	sql  string
	args []any
}

var errCaptured = errors.New("postgres: statement captured, not run")

func (c *capture) Exec(_ context.Context, sql string, args ...any) (pgconn.CommandTag, error) {
	c.sql, c.args = sql, args
	return pgconn.CommandTag{}, errCaptured
}

func (c *capture) Query(_ context.Context, sql string, args ...any) (pgx.Rows, error) {
	c.sql, c.args = sql, args
	return nil, errCaptured
}

func (c *capture) QueryRow(_ context.Context, sql string, args ...any) pgx.Row {
	c.sql, c.args = sql, args
	return errRow{errCaptured}
}

// given is a pgdb.DBTX whose one query answers with rows already read
// from a batch, so that the generated code scans them.
type given struct{ rows pgx.Rows }

func (g given) Query(context.Context, string, ...any) (pgx.Rows, error) { return g.rows, nil }

func (g given) Exec(context.Context, string, ...any) (pgconn.CommandTag, error) {
	return pgconn.CommandTag{}, errGiven
}

func (g given) QueryRow(context.Context, string, ...any) pgx.Row { return errRow{errGiven} }

var errGiven = errors.New("postgres: rows given from a batch answer one query")

var errSecond = errors.New("postgres: a one-statement transaction ran a second statement")

var _ pgdb.DBTX = (*tx)(nil)

// first sends BEGIN (unless single), the settings and the transaction's
// first statement together and returns the batch positioned on that
// statement's result.
func (t *tx) first(ctx context.Context, sql string, args []any) (pgx.BatchResults, error) {
	b := &pgx.Batch{}
	if !t.single {
		b.Queue("begin")
	}
	for _, s := range t.setup {
		b.Queue(s)
	}
	b.Queue(sql, args...)
	t.begun = true
	br := t.conn.SendBatch(ctx, b)
	n := len(t.setup)
	if !t.single {
		n++
	}
	for range n {
		if _, err := br.Exec(); err != nil {
			_ = br.Close()
			return nil, err
		}
	}
	return br, nil
}

// set applies a statement that changes the transaction's settings (SET
// LOCAL, set_config(…, true)): with BEGIN when it has not begun, at once
// otherwise.
func (t *tx) set(ctx context.Context, stmt string) error {
	if t.single && t.begun {
		return errSecond
	}
	if !t.begun {
		t.setup = append(t.setup, stmt)
		return nil
	}
	_, err := t.conn.Exec(ctx, stmt)
	return err
}

// Exec runs a statement in the transaction.
func (t *tx) Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error) {
	if t.begun && t.single {
		return pgconn.CommandTag{}, errSecond
	}
	if t.begun {
		return t.conn.Exec(ctx, sql, args...)
	}
	if res, ok, err := t.grouped(ctx, sql, args); ok || err != nil {
		if err != nil {
			return pgconn.CommandTag{}, err
		}
		return res.tag, nil
	}
	br, err := t.first(ctx, sql, args)
	if err != nil {
		return pgconn.CommandTag{}, err
	}
	tag, err := br.Exec()
	if cerr := br.Close(); err == nil {
		err = cerr
	}
	return tag, err
}

// Query runs a query in the transaction.
func (t *tx) Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error) {
	if t.begun && t.single {
		return nil, errSecond
	}
	if t.begun {
		return t.conn.Query(ctx, sql, args...)
	}
	if res, ok, err := t.grouped(ctx, sql, args); ok || err != nil {
		if err != nil {
			return nil, err
		}
		return newResultRows(res), nil
	}
	br, err := t.first(ctx, sql, args)
	if err != nil {
		return nil, err
	}
	rows, err := br.Query()
	if err != nil {
		_ = br.Close()
		return nil, err
	}
	return &batchRows{Rows: rows, br: br}, nil
}

// QueryRow runs a one-row query in the transaction.
func (t *tx) QueryRow(ctx context.Context, sql string, args ...any) pgx.Row {
	if t.begun && t.single {
		return errRow{errSecond}
	}
	if t.begun {
		return t.conn.QueryRow(ctx, sql, args...)
	}
	if res, ok, err := t.grouped(ctx, sql, args); ok || err != nil {
		if err != nil {
			return errRow{err}
		}
		return resultRow{res}
	}
	br, err := t.first(ctx, sql, args)
	if err != nil {
		return errRow{err}
	}
	return batchRow{br: br}
}

// commit sends the events, COMMIT and the reads that follow it (after)
// in one round trip.
func (t *tx) commit(ctx context.Context) error {
	if !t.begun && len(t.events) == 0 && !t.notify {
		t.readAfterAlone(ctx) // nothing written: no commit to wait for
		return nil
	}
	b := &pgx.Batch{}
	q := pgdb.New(deferred{b})
	n := 0
	if len(t.events) > 0 {
		if err := q.InsertEvents(ctx, insertEvents(t.events)); err != nil {
			return err
		}
		n++
	}
	if t.notify {
		if err := q.NotifyQueue(ctx); err != nil {
			return err
		}
		n++
	}
	if t.begun {
		b.Queue("commit")
		for _, a := range t.after {
			b.Queue(a.sql, a.args...)
		}
	}
	br := t.conn.SendBatch(ctx, b)
	var err error
	for i := 0; i < n && err == nil; i++ {
		_, err = br.Exec()
	}
	if err == nil && t.begun {
		var tag pgconn.CommandTag
		// A transaction that failed earlier answers COMMIT with ROLLBACK.
		if tag, err = br.Exec(); err == nil && tag.String() != "COMMIT" {
			err = fmt.Errorf("transaction rolled back (%s)", tag)
		}
		if err == nil {
			// Committed: a read that fails now does not undo that.
			t.readAfter(br)
			_ = br.Close()
			return nil
		}
	}
	if cerr := br.Close(); err == nil {
		err = cerr
	}
	if err == nil && !t.begun {
		// Events alone went as an implicit transaction, committed by now.
		t.readAfterAlone(ctx)
	}
	return err
}

// readAfter hands the reads queued after COMMIT on br their rows,
// stopping at the first that fails.
func (t *tx) readAfter(br pgx.BatchResults) {
	t.eachAfter(func(afterRead) (pgx.Rows, error) { return br.Query() })
}

// readAfterAlone runs the reads on their own, once there is no commit left
// for them to follow.
func (t *tx) readAfterAlone(ctx context.Context) {
	if len(t.after) == 0 {
		return
	}
	if err := t.acquire(ctx); err != nil {
		return
	}
	t.eachAfter(func(a afterRead) (pgx.Rows, error) { return t.conn.Query(ctx, a.sql, a.args...) })
}

// eachAfter hands each read the rows query gets for it, stopping at the
// first that fails.
func (t *tx) eachAfter(query func(afterRead) (pgx.Rows, error)) {
	for _, a := range t.after {
		rows, err := query(a)
		if err == nil {
			err = a.read(rows)
			rows.Close()
		}
		if err != nil {
			return
		}
	}
}

// rollback ends a transaction that will not commit. It is best effort:
// a connection released in a transaction is closed by the pool.
func (t *tx) rollback(ctx context.Context) {
	if t.begun && ctx.Err() == nil {
		_, _ = t.conn.Exec(ctx, "rollback")
	}
}

// deferred queues statements on a batch; their results are not read.
type deferred struct{ b *pgx.Batch }

func (d deferred) Exec(_ context.Context, sql string, args ...any) (pgconn.CommandTag, error) {
	d.b.Queue(sql, args...)
	return pgconn.CommandTag{}, nil
}

var errDeferred = errors.New("postgres: a deferred statement returns no rows")

func (d deferred) Query(context.Context, string, ...any) (pgx.Rows, error) { return nil, errDeferred }

func (d deferred) QueryRow(context.Context, string, ...any) pgx.Row { return errRow{errDeferred} }

// batchRow is the first statement's row; scanning it ends the batch.
type batchRow struct{ br pgx.BatchResults }

func (r batchRow) Scan(dest ...any) error {
	err := r.br.QueryRow().Scan(dest...)
	if cerr := r.br.Close(); err == nil {
		err = cerr
	}
	return err
}

// batchRows are the first statement's rows; closing them ends the batch.
type batchRows struct {
	pgx.Rows
	br pgx.BatchResults
}

func (r *batchRows) Close() {
	r.Rows.Close()
	_ = r.br.Close()
}

type errRow struct{ err error }

func (r errRow) Scan(...any) error { return r.err }
