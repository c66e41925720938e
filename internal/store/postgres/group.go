package postgres

import (
	"context"
	"errors"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/jackc/pgx/v5/pgxpool"
)

// A group sends the one-statement transactions (Driver.WriteOne) that
// arrive while another is in flight as one transaction of several
// statements, in one round trip: under load, k claims, starts or
// completions share one commit, one WAL flush and one wake-up of the
// server, where each would cost all three. Alone, a statement goes at
// once.
//
// Statements of a group share their settings (the setup sent before
// them), so a claim's synchronous_commit off never reaches a start. When
// any statement of a group fails, PostgreSQL rolls back all of them: each
// is then sent again on its own, and only its own error reaches its
// caller. A broken connection leaves the outcome unknown, as it does for
// one statement, and its error goes to every caller.
type group struct {
	pool  *pgxpool.Pool
	setup []string

	mu    sync.Mutex
	queue []*grouped
	// busy while a round trip is in flight: one at a time, which is what
	// lets the statements that arrive meanwhile share the next. (Two at a
	// time made groups smaller and PostgreSQL busier, for no gain.)
	busy bool
}

// groupMax bounds the statements of one round trip.
const groupMax = 32

// groupTimeout bounds a group's round trip: it runs apart from any one
// caller's context, which may end while the others wait.
const groupTimeout = time.Minute

// grouped is one statement of a group and, once sent, its result.
type grouped struct {
	sql  string
	args []any
	res  *result
	err  error
	done chan struct{}
}

// errAlone tells a statement whose group failed to go again on its own.
var errAlone = errors.New("postgres: the statement's group failed; send it alone")

// groups holds a group per distinct setup.
type groups struct {
	pool *pgxpool.Pool
	mu   sync.Mutex
	by   map[string]*group
}

func (gs *groups) get(setup []string) *group {
	key := strings.Join(setup, "\x00")
	gs.mu.Lock()
	defer gs.mu.Unlock()
	g, ok := gs.by[key]
	if !ok {
		if gs.by == nil {
			gs.by = map[string]*group{}
		}
		g = &group{pool: gs.pool, setup: append([]string(nil), setup...)}
		gs.by[key] = g
	}
	return g
}

// do sends sql with the group's next round trip and returns its result,
// or errAlone when the round trip failed because of another statement.
func (g *group) do(ctx context.Context, sql string, args []any) (*result, error) {
	s := &grouped{sql: sql, args: args, done: make(chan struct{})}
	g.mu.Lock()
	g.queue = append(g.queue, s)
	lead := !g.busy
	g.busy = true
	g.mu.Unlock()
	if lead {
		g.drain(ctx, true)
	}
	select {
	case <-s.done:
		return s.res, s.err
	case <-ctx.Done():
		// The statement may still run, as one whose answer is lost.
		return nil, ctx.Err()
	}
}

// drain sends the queued statements, up to groupMax per round trip, until
// none is left. The caller that found the group idle sends the first
// round trip (inline) and hands the rest to a goroutine, so that it can
// answer its own caller.
func (g *group) drain(ctx context.Context, inline bool) {
	ctx = context.WithoutCancel(ctx)
	for {
		g.mu.Lock()
		n := min(len(g.queue), groupMax)
		if n == 0 {
			g.busy = false
			g.mu.Unlock()
			return
		}
		batch := g.queue[:n:n]
		g.queue = g.queue[n:]
		g.mu.Unlock()
		g.send(ctx, batch)
		if inline {
			g.mu.Lock()
			more := len(g.queue) > 0
			g.busy = more
			g.mu.Unlock()
			if more {
				go g.drain(ctx, false)
			}
			return
		}
	}
}

// send runs batch as one implicit transaction and hands each statement
// its result.
func (g *group) send(ctx context.Context, batch []*grouped) {
	ctx, cancel := context.WithTimeout(ctx, groupTimeout)
	defer cancel()
	results, err := g.roundTrip(ctx, batch)
	for i, s := range batch {
		if err != nil {
			s.err = err
		} else {
			s.res = results[i]
		}
		close(s.done)
	}
}

func (g *group) roundTrip(ctx context.Context, batch []*grouped) ([]*result, error) {
	conn, err := g.pool.Acquire(ctx)
	if err != nil {
		return nil, err
	}
	defer conn.Release()
	b := &pgx.Batch{}
	for _, s := range g.setup {
		b.Queue(s)
	}
	for _, s := range batch {
		b.Queue(s.sql, s.args...)
	}
	br := conn.SendBatch(ctx, b)
	results := make([]*result, len(batch))
	var stmtErr error
	for range g.setup {
		if _, err := br.Exec(); err != nil {
			stmtErr = err
			break
		}
	}
	for i := 0; i < len(batch) && stmtErr == nil; i++ {
		results[i], stmtErr = readResult(br)
	}
	// The Sync after the last statement commits them all.
	closeErr := br.Close()
	var pgErr *pgconn.PgError
	switch {
	case stmtErr != nil && errors.As(stmtErr, &pgErr):
		// PostgreSQL refused a statement and rolled the others back.
		if len(batch) == 1 {
			return nil, stmtErr
		}
		return nil, errAlone
	case stmtErr != nil:
		return nil, stmtErr
	case closeErr != nil:
		return nil, closeErr
	}
	return results, nil
}

// result is a statement's answer, read whole off a batch so that its
// caller scans it after the round trip.
type result struct {
	fields []pgconn.FieldDescription
	rows   [][][]byte
	tag    pgconn.CommandTag
}

func readResult(br pgx.BatchResults) (*result, error) {
	rows, err := br.Query()
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	r := &result{fields: append([]pgconn.FieldDescription(nil), rows.FieldDescriptions()...)}
	for rows.Next() {
		raw := rows.RawValues()
		row := make([][]byte, len(raw))
		for i, v := range raw {
			if v != nil {
				row[i] = append(make([]byte, 0, len(v)), v...)
			}
		}
		r.rows = append(r.rows, row)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	r.tag = rows.CommandTag()
	return r, nil
}

// typeMaps hands the goroutines that scan results a type map each:
// pgtype.Map caches as it scans and is not safe for concurrent use.
var typeMaps = sync.Pool{New: func() any { return pgtype.NewMap() }}

// resultRows are a result's rows as pgx.Rows.
type resultRows struct {
	r   *result
	i   int // the row Next moved to, from 1
	m   *pgtype.Map
	err error
}

func (r *resultRows) Close() {
	if r.m != nil {
		typeMaps.Put(r.m)
		r.m = nil
	}
}

func (r *resultRows) Err() error                                   { return r.err }
func (r *resultRows) CommandTag() pgconn.CommandTag                { return r.r.tag }
func (r *resultRows) FieldDescriptions() []pgconn.FieldDescription { return r.r.fields }
func (r *resultRows) Conn() *pgx.Conn                              { return nil }
func (r *resultRows) TypeMap() *pgtype.Map                         { return r.m }

func (r *resultRows) Next() bool {
	if r.err != nil || r.i >= len(r.r.rows) {
		r.Close()
		return false
	}
	r.i++
	return true
}

func (r *resultRows) Scan(dest ...any) error {
	if r.i == 0 || r.m == nil {
		return errors.New("postgres: Scan called without a row")
	}
	if err := pgx.ScanRow(r.m, r.r.fields, r.r.rows[r.i-1], dest...); err != nil {
		r.err = err
		return err
	}
	return nil
}

func (r *resultRows) Values() ([]any, error) {
	return nil, errors.New("postgres: Values is not supported on a grouped statement's rows")
}

func (r *resultRows) RawValues() [][]byte { return r.r.rows[r.i-1] }

func newResultRows(res *result) *resultRows {
	return &resultRows{r: res, m: typeMaps.Get().(*pgtype.Map)}
}

// resultRow is the first row of a result, as pgx.Row.
type resultRow struct{ res *result }

func (r resultRow) Scan(dest ...any) error {
	rows := newResultRows(r.res)
	defer rows.Close()
	if !rows.Next() {
		return pgx.ErrNoRows
	}
	return rows.Scan(dest...)
}
