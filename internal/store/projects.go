package store

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/deltaci/deltaci/internal/core"
)

// DefaultBranch is the branch CreateProject gives a project created
// without one.
const DefaultBranch = "main"

// ProjectRow is an engine-neutral project row; Protected, Secrets and
// Labels are JSON arrays.
type ProjectRow struct {
	ID, Name, RepoURL, DefaultBranch string
	Protected, Secrets, Labels       string
	Forge                            string // core.ProjectForge as JSON
	UntrustedNetwork                 bool
	Public                           bool
	CreatedAt, UpdatedAt             int64
}

// ProjectToRow encodes a project for storage.
func ProjectToRow(p core.Project) (ProjectRow, error) {
	row := ProjectRow{
		ID: p.ID, Name: p.Name, RepoURL: p.RepoURL, DefaultBranch: p.DefaultBranch,
		UntrustedNetwork: p.UntrustedNetwork, Public: p.Public, CreatedAt: Millis(p.CreatedAt), UpdatedAt: Millis(p.UpdatedAt),
	}
	var err error
	for _, l := range []struct {
		to   *string
		from []string
	}{{&row.Protected, p.Protected}, {&row.Secrets, p.Secrets}, {&row.Labels, p.Labels}} {
		if *l.to, err = EncodeLabels(l.from); err != nil {
			return ProjectRow{}, err
		}
	}
	f, err := json.Marshal(p.Forge)
	if err != nil {
		return ProjectRow{}, core.Wrap(core.KindInternal, "encode project "+p.Name, err)
	}
	row.Forge = string(f)
	return row, nil
}

// ProjectFromRow decodes a stored project. Its lists are never nil.
func ProjectFromRow(r ProjectRow) (core.Project, error) {
	p := core.Project{
		ID: r.ID, Name: r.Name, RepoURL: r.RepoURL, DefaultBranch: r.DefaultBranch,
		UntrustedNetwork: r.UntrustedNetwork, Public: r.Public, CreatedAt: FromMillis(r.CreatedAt), UpdatedAt: FromMillis(r.UpdatedAt),
	}
	for _, l := range []struct {
		from string
		to   *[]string
	}{{r.Protected, &p.Protected}, {r.Secrets, &p.Secrets}, {r.Labels, &p.Labels}} {
		if err := json.Unmarshal([]byte(l.from), l.to); err != nil {
			return core.Project{}, core.Wrap(core.KindInternal, "decode project "+r.Name, err)
		}
	}
	if err := json.Unmarshal([]byte(r.Forge), &p.Forge); err != nil {
		return core.Project{}, core.Wrap(core.KindInternal, "decode project "+r.Name, err)
	}
	return p, nil
}

// CreateProject records a new project; its ID and times are set here, and
// an empty DefaultBranch becomes DefaultBranch. It returns a
// core.KindInvalid error for a project that fails core.Project.Validate,
// and core.KindConflict when the name or the repository URL is taken.
func (s *Store) CreateProject(ctx context.Context, p core.Project) (core.Project, error) {
	if p.DefaultBranch == "" {
		p.DefaultBranch = DefaultBranch
	}
	if err := p.Validate(); err != nil {
		return core.Project{}, err
	}
	p = withLists(p)
	p.ID = NewID()
	p.CreatedAt = s.Now()
	p.UpdatedAt = p.CreatedAt
	err := s.drv.Write(ctx, func(q Queries) error { return q.InsertProject(ctx, p) })
	if err != nil {
		return core.Project{}, s.projectWriteErr(ctx, "create project", p, true, err)
	}
	return p, nil
}

// Project returns the project named name, or a core.KindNotFound error.
func (s *Store) Project(ctx context.Context, name string) (core.Project, error) {
	p, err := s.drv.Read().GetProject(ctx, name)
	if core.KindOf(err) == core.KindNotFound {
		return core.Project{}, core.E(core.KindNotFound, "project", "no project %q", name)
	}
	return p, err
}

// ProjectByRepo returns the project of a repository URL, or a
// core.KindNotFound error.
func (s *Store) ProjectByRepo(ctx context.Context, repoURL string) (core.Project, error) {
	p, err := s.drv.Read().GetProjectByRepo(ctx, repoURL)
	if core.KindOf(err) == core.KindNotFound {
		return core.Project{}, core.E(core.KindNotFound, "project", "no project has repository %s", repoURL)
	}
	return p, err
}

// Projects returns every project by name, an empty slice when there is none.
func (s *Store) Projects(ctx context.Context) ([]core.Project, error) {
	return s.drv.Read().ListProjects(ctx)
}

// UpdateProject replaces every field of the project named p.Name but its
// ID, Name and CreatedAt, sets UpdatedAt, and returns the project as
// stored. It returns core.KindInvalid for a project that fails
// core.Project.Validate, core.KindNotFound when there is no such project
// and core.KindConflict when another project has the repository URL.
func (s *Store) UpdateProject(ctx context.Context, p core.Project) (core.Project, error) {
	if err := p.Validate(); err != nil {
		return core.Project{}, err
	}
	p.UpdatedAt = s.Now()
	var out core.Project
	err := s.drv.Write(ctx, func(q Queries) error {
		var err error
		out, err = q.UpdateProject(ctx, p)
		return err
	})
	if core.KindOf(err) == core.KindNotFound {
		return core.Project{}, core.E(core.KindNotFound, "update project", "no project %q", p.Name)
	}
	if err != nil {
		return core.Project{}, s.projectWriteErr(ctx, "update project", p, false, err)
	}
	return out, nil
}

// RemoveProject forgets a project; its runs keep its name. An unknown name
// is a core.KindNotFound error.
func (s *Store) RemoveProject(ctx context.Context, name string) error {
	var ok bool
	err := s.drv.Write(ctx, func(q Queries) error {
		var err error
		ok, err = q.DeleteProject(ctx, name)
		return err
	})
	if err != nil {
		return fmt.Errorf("remove project %s: %w", name, err)
	}
	if !ok {
		return core.E(core.KindNotFound, "remove project", "no project %q", name)
	}
	return nil
}

// projectWriteErr names what a write of p collided with. The engines only
// say that a unique key was taken; the committed rows say which, as the
// write that took it has committed by the time the collision is reported.
func (s *Store) projectWriteErr(ctx context.Context, op string, p core.Project, create bool, err error) error {
	if core.KindOf(err) != core.KindConflict {
		return fmt.Errorf("%s %s: %w", op, p.Name, err)
	}
	r := s.drv.Read()
	if create {
		if _, gerr := r.GetProject(ctx, p.Name); gerr == nil {
			return core.E(core.KindConflict, op, "project %q exists", p.Name)
		}
	}
	if other, gerr := r.GetProjectByRepo(ctx, p.RepoURL); gerr == nil && other.Name != p.Name {
		return core.E(core.KindConflict, op, "repository %s is already project %q", p.RepoURL, other.Name)
	}
	return fmt.Errorf("%s %s: %w", op, p.Name, err)
}

// withLists gives p empty lists for nil ones, as they read back.
func withLists(p core.Project) core.Project {
	for _, l := range []*[]string{&p.Protected, &p.Secrets, &p.Labels} {
		if *l == nil {
			*l = []string{}
		}
	}
	return p
}
