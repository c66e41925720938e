package ui

import (
	"net/http"
)

// maxForm bounds an action's form: it carries only its CSRF token.
const maxForm = 4 << 10

// act checks an action's form and the caller's right to act on the run
// (maintainer or admin of its project), and returns the caller's actor.
func (u *UI) act(w http.ResponseWriter, r *http.Request) (string, error) {
	r.Body = http.MaxBytesReader(w, r.Body, maxForm)
	if err := u.cfg.Auth.CheckCSRF(r); err != nil {
		return "", &forbidden{msg: err.Error()}
	}
	run, role, err := u.loadRun(r.Context(), r.PathValue("id"))
	if err != nil {
		return "", err
	}
	if !mayAct(role) {
		return "", &forbidden{msg: "canceling and rerunning runs of project " + run.Project + " needs the maintainer or admin role; you are a " + role}
	}
	actor, _ := u.cfg.Session(r.Context())
	return actor, nil
}

// cancel cancels the run and shows it.
func (u *UI) cancel(w http.ResponseWriter, r *http.Request) error {
	actor, err := u.act(w, r)
	if err != nil {
		return err
	}
	id := r.PathValue("id")
	if err := u.cfg.Backend.Cancel(r.Context(), actor, id); err != nil {
		return err
	}
	http.Redirect(w, r, runHref(id), http.StatusSeeOther)
	return nil
}

// rerun runs the run's failed jobs again in a new run and shows it.
func (u *UI) rerun(w http.ResponseWriter, r *http.Request) error {
	actor, err := u.act(w, r)
	if err != nil {
		return err
	}
	run, err := u.cfg.Backend.Rerun(r.Context(), actor, r.PathValue("id"), "")
	if err != nil {
		return err
	}
	http.Redirect(w, r, runHref(run.ID), http.StatusSeeOther)
	return nil
}

// rerunJob runs one job again (and what needs it and did not succeed) in
// a new run and shows it.
func (u *UI) rerunJob(w http.ResponseWriter, r *http.Request) error {
	actor, err := u.act(w, r)
	if err != nil {
		return err
	}
	run, err := u.cfg.Backend.Rerun(r.Context(), actor, r.PathValue("id"), r.PathValue("name"))
	if err != nil {
		return err
	}
	http.Redirect(w, r, runHref(run.ID), http.StatusSeeOther)
	return nil
}
