// Package open wires an artifact store from its two settings, the metadata
// database and the blob store, the same way for the standalone
// artifactstore, for deltaci artifacts and for the Delta CI server.
package open

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"github.com/deltaci/deltaci/internal/artifact/blobstore"
	"github.com/deltaci/deltaci/internal/artifact/blobstore/fs"
	"github.com/deltaci/deltaci/internal/artifact/blobstore/s3"
	"github.com/deltaci/deltaci/internal/artifact/dataplane"
	"github.com/deltaci/deltaci/internal/artifact/digest"
	"github.com/deltaci/deltaci/internal/artifact/eventlog"
	elpostgres "github.com/deltaci/deltaci/internal/artifact/eventlog/postgres"
	elsqlite "github.com/deltaci/deltaci/internal/artifact/eventlog/sqlite"
	"github.com/deltaci/deltaci/internal/artifact/registry"
	"github.com/deltaci/deltaci/internal/core"
)

// Config names the parts of a store.
type Config struct {
	// Database is an SQLite file path or a postgres:// URL.
	Database string
	// Store is a directory or s3://bucket/prefix.
	Store string
	// S3 holds the endpoint and credentials for an s3:// store.
	S3 s3.Options
	// StageDir holds resumable uploads in progress; next to the database
	// (or in Store for a directory) when empty.
	StageDir string
	Log      *slog.Logger
}

// Store is an opened artifact store.
type Store struct {
	Meta     *eventlog.Store
	Blobs    blobstore.Store
	Data     *dataplane.Local
	Registry *registry.Registry
	close    []func() error
}

// Close releases the database and the blob store.
func (s *Store) Close() error {
	var errs []error
	for i := len(s.close) - 1; i >= 0; i-- {
		errs = append(errs, s.close[i]())
	}
	return errors.Join(errs...)
}

// IsPostgres reports whether a database setting names PostgreSQL.
func IsPostgres(database string) bool {
	return strings.HasPrefix(database, "postgres://") || strings.HasPrefix(database, "postgresql://")
}

// OpenMeta opens (creating and migrating as needed) only the metadata
// database: an SQLite file path (a leading sqlite:// is dropped) or a
// postgres:// URL.
func OpenMeta(ctx context.Context, database string) (*eventlog.Store, error) {
	var drv eventlog.Driver
	var err error
	if IsPostgres(database) {
		drv, err = elpostgres.Open(ctx, database)
	} else {
		drv, err = elsqlite.Open(ctx, strings.TrimPrefix(database, "sqlite://"))
	}
	if err != nil {
		return nil, err
	}
	return eventlog.New(drv), nil
}

// Migrate applies the pending migrations of the metadata database and
// returns the versions it applied.
func Migrate(ctx context.Context, database string) ([]int64, error) {
	if IsPostgres(database) {
		return elpostgres.Migrate(ctx, database)
	}
	return elsqlite.Migrate(ctx, strings.TrimPrefix(database, "sqlite://"))
}

// Open opens (creating and migrating as needed) the store of cfg.
func Open(ctx context.Context, cfg Config) (*Store, error) {
	if cfg.Database == "" || cfg.Store == "" {
		return nil, core.E(core.KindInvalid, "open artifact store", "both a database (--database) and a blob store (--store) are required")
	}
	s := &Store{}
	var err error
	if s.Meta, err = OpenMeta(ctx, cfg.Database); err != nil {
		return nil, err
	}
	s.close = append(s.close, s.Meta.Close)
	stage := cfg.StageDir
	if strings.HasPrefix(cfg.Store, "s3://") {
		st, err := s3.Open(ctx, cfg.Store, cfg.S3)
		if err != nil {
			s.Close()
			return nil, err
		}
		s.Blobs = st
		s.close = append(s.close, func() error { st.Close(); return nil })
		if stage == "" {
			if IsPostgres(cfg.Database) {
				// Nothing local to sit beside; resumable uploads are pinned
				// to this machine anyway.
				stage = filepath.Join(os.TempDir(), "artifactstore-uploads")
			} else {
				stage = filepath.Join(filepath.Dir(cfg.Database), "uploads")
			}
		}
	} else {
		st, err := fs.Open(cfg.Store)
		if err != nil {
			s.Close()
			return nil, err
		}
		s.Blobs = st
		if stage == "" {
			stage = filepath.Join(cfg.Store, "uploads")
		}
	}
	log := cfg.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s.Data, err = dataplane.NewLocal(s.Meta, s.Blobs, stage, dataplane.WithLog(log))
	if err != nil {
		s.Close()
		return nil, err
	}
	s.Registry = &registry.Registry{Meta: s.Meta, Blobs: s.Blobs, Alg: digest.Default, Log: log}
	// Every upload through the registry (the API's too) holds a GC lease.
	s.Registry.Data = &registry.LeasedUploads{DataPlane: s.Data, Leaser: s.Registry, Log: log}
	return s, nil
}
