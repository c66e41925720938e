package ui

import (
	"bytes"
	"html/template"
	"strconv"
)

// The parts of the run page repeated per job are written here rather than
// by html/template, whose per-field escaping through reflection takes most
// of a 1,000-job page's time. Every value is escaped with escapeTo, which
// is safe in text and in double-quoted attributes; hrefs are built from
// path-escaped names.

// htmlWriter writes markup and escaped values.
type htmlWriter struct{ bytes.Buffer }

func (w *htmlWriter) raw(s ...string) {
	for _, x := range s {
		w.WriteString(x)
	}
}

func (w *htmlWriter) text(s string) { escapeTo(&w.Buffer, []byte(s)) }

func (w *htmlWriter) num(n int) { w.WriteString(strconv.Itoa(n)) }

func (w *htmlWriter) html() template.HTML { return template.HTML(w.String()) }

// graphHTML is the job graph's edges and nodes, inside its svg.
func graphHTML(g graph) template.HTML {
	var w htmlWriter
	for _, e := range g.Edges {
		w.raw(`<path class="edge" d="`)
		w.text(e.Path)
		w.raw(`"><title>`)
		w.text(e.To)
		w.raw(" needs ")
		w.text(e.From)
		w.raw("</title></path>\n")
	}
	for _, n := range g.Nodes {
		w.raw(`<a href="`)
		w.text(n.Href)
		w.raw(`" class="node st-`)
		w.text(n.State)
		w.raw(`" data-job="`)
		w.text(n.Name)
		w.raw(`"><rect x="`)
		w.num(n.X)
		w.raw(`" y="`)
		w.num(n.Y)
		w.raw(`" width="180" height="40" rx="6"></rect><text x="`)
		w.num(n.TextX)
		w.raw(`" y="`)
		w.num(n.TextY)
		w.raw(`" class="nm">`)
		w.text(n.Label)
		w.raw(`</text><text x="`)
		w.num(n.TextX)
		w.raw(`" y="`)
		w.num(n.StateY)
		w.raw(`" class="sn">`)
		w.text(n.State)
		w.raw(`</text><title>`)
		w.text(n.Name)
		w.raw(": ")
		w.text(n.State)
		w.raw("</title></a>\n")
	}
	return w.html()
}

// jobRowsHTML is the body of the run page's table of jobs.
func jobRowsHTML(p *runPage) template.HTML {
	var w htmlWriter
	rerun := p.MayAct && p.CanRerun
	for _, j := range p.Jobs {
		w.raw(`<tr id="job-`)
		w.text(j.Name)
		w.raw(`" data-job="`)
		w.text(j.Name)
		w.raw(`"><th scope="row"><a href="`)
		w.text(j.Href)
		w.raw(`">`)
		w.text(j.Name)
		w.raw(`</a></th>`, "\n", `<td class="decision dec-`)
		w.text(j.Decision)
		w.raw(`">`)
		w.text(j.Decision)
		w.raw(`</td>`, "\n", `<td><span class="st st-`)
		w.text(j.State)
		w.raw(`">`)
		w.text(j.State)
		w.raw(`</span>`)
		if j.Reason != "" {
			w.raw(" (")
			w.text(j.Reason)
			w.raw(")")
		}
		w.raw(`</td>`, "\n", `<td class="why">`)
		w.text(j.Explain)
		if j.ReusedFrom != "" {
			w.raw(` <span class="muted">from attempt <code>`)
			w.text(j.ReusedFrom)
			w.raw(`</code></span>`)
		}
		if j.Waiting != "" {
			w.raw(`<br><span class="waiting">Waiting: `)
			w.text(j.Waiting)
			w.raw(`</span>`)
		}
		w.raw(`</td>`, "\n", `<td>`)
		w.text(j.Duration)
		w.raw(`</td>`, "\n", `<td>`)
		for _, a := range j.Attempts {
			w.raw(`<div class="att"><a href="`)
			w.text(j.Href)
			w.raw(`?attempt=`)
			w.num(a.Number)
			w.raw(`">#`)
			w.num(a.Number)
			w.raw(`</a> `)
			w.text(a.State)
			if a.Reason != "" {
				w.raw(" (")
				w.text(a.Reason)
				if a.ExitCode != nil {
					w.raw(" ")
					w.num(*a.ExitCode)
				}
				w.raw(")")
			}
			if a.Wait != "" {
				w.raw(" · waited ")
				w.text(a.Wait)
			}
			if a.Ran != "" {
				w.raw(" · ran ")
				w.text(a.Ran)
			}
			w.raw(`</div>`)
		}
		w.raw(`</td>`)
		if rerun {
			w.raw("\n", `<td><form method="post" action="`)
			w.text(j.Href)
			w.raw(`/rerun"><input type="hidden" name="csrf" value="`)
			w.text(p.CSRF)
			w.raw(`"><button type="submit" class="small" aria-label="Rerun `)
			w.text(j.Name)
			w.raw(`">Rerun</button></form></td>`)
		}
		w.raw("\n</tr>\n")
	}
	return w.html()
}

// fallHTML is the waterfall's ticks and rows, inside its svg.
func fallHTML(f waterfall) template.HTML {
	var w htmlWriter
	for _, t := range f.Ticks {
		w.raw(`<line class="tick" x1="`)
		w.num(t.X)
		w.raw(`" y1="14" x2="`)
		w.num(t.X)
		w.raw(`" y2="`)
		w.num(f.Height)
		w.raw(`"></line><text class="tl" x="`)
		w.num(t.X)
		w.raw(`" y="11">`)
		w.text(t.Label)
		w.raw("</text>\n")
	}
	for _, r := range f.Rows {
		w.raw(`<g class="row`)
		if r.Critical {
			w.raw(" crit")
		}
		w.raw(`"><a href="`)
		w.text(r.Href)
		w.raw(`"><text x="4" y="`)
		w.num(r.TextY)
		w.raw(`">`)
		w.text(r.Name)
		w.raw(`</text></a>`)
		for _, s := range r.Segs {
			w.raw(`<rect class="seg `)
			w.text(s.Kind)
			w.raw(` st-`)
			w.text(s.State)
			w.raw(`" x="`)
			w.num(s.X)
			w.raw(`" y="`)
			w.num(r.Y)
			w.raw(`" width="`)
			w.num(s.W)
			w.raw(`" height="18"><title>`)
			w.text(s.Title)
			w.raw(`</title></rect>`)
		}
		if r.Note != "" {
			w.raw(`<text class="note" x="204" y="`)
			w.num(r.TextY)
			w.raw(`">`)
			w.text(r.Note)
			w.raw(`</text>`)
		}
		w.raw("</g>\n")
	}
	return w.html()
}
