package deploy_test

import (
	"bytes"
	"encoding/json"
	"os"
	"slices"
	"testing"
)

// dashboard is the part of Grafana's dashboard JSON model that
// grafana/deltaci.json uses, decoded strictly so a misspelled key fails.
type dashboard struct {
	Title         string   `json:"title"`
	UID           string   `json:"uid"`
	Description   string   `json:"description"`
	Tags          []string `json:"tags"`
	Timezone      string   `json:"timezone"`
	Editable      bool     `json:"editable"`
	GraphTooltip  int      `json:"graphTooltip"`
	SchemaVersion int      `json:"schemaVersion"`
	Version       int      `json:"version"`
	Refresh       string   `json:"refresh"`
	Time          struct{ From, To string }
	Templating    struct{ List []json.RawMessage }
	Annotations   struct{ List []json.RawMessage }
	Links         []json.RawMessage `json:"links"`
	Panels        []panel           `json:"panels"`
}

type panel struct {
	ID          int         `json:"id"`
	Type        string      `json:"type"`
	Title       string      `json:"title"`
	Description string      `json:"description"`
	Collapsed   bool        `json:"collapsed"`
	Datasource  *datasource `json:"datasource"`
	GridPos     struct{ H, W, X, Y int }
	FieldConfig json.RawMessage `json:"fieldConfig"`
	Options     json.RawMessage `json:"options"`
	Panels      []panel         `json:"panels"`
	Targets     []struct {
		Datasource   *datasource `json:"datasource"`
		Expr         string      `json:"expr"`
		LegendFormat string      `json:"legendFormat"`
		RefID        string      `json:"refId"`
	} `json:"targets"`
}

type datasource struct {
	Type string `json:"type"`
	UID  string `json:"uid"`
}

// designMetrics are the metrics DESIGN.md section 13 lists; the dashboard
// shows each.
var designMetrics = []string{"deltaci_queue_depth", "deltaci_queue_wait_seconds", "deltaci_attempts_total",
	"deltaci_lease_expirations_total", "deltaci_jobs_reused_total", "deltaci_plan_seconds",
	"deltaci_log_bytes_total", "deltaci_store_bytes"}

// TestGrafanaDashboard: the dashboard decodes, its panels are laid out
// without overlapping, every query names only metrics the code defines,
// and every metric of DESIGN.md section 13 is on it.
func TestGrafanaDashboard(t *testing.T) {
	t.Parallel()
	b, err := os.ReadFile("grafana/deltaci.json")
	if err != nil {
		t.Fatal(err)
	}
	var d dashboard
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&d); err != nil {
		t.Fatalf("grafana/deltaci.json: %v", err)
	}
	if d.UID == "" || d.Title == "" || d.SchemaVersion == 0 {
		t.Errorf("the dashboard needs a uid, a title and a schemaVersion: %q %q %d", d.UID, d.Title, d.SchemaVersion)
	}
	defined := definedMetrics(t)
	shown := map[string]bool{}
	ids := map[int]bool{}
	var cells [][4]int
	for _, p := range d.Panels {
		if ids[p.ID] {
			t.Errorf("panel id %d is used twice", p.ID)
		}
		ids[p.ID] = true
		g := p.GridPos
		if g.W <= 0 || g.H <= 0 || g.X < 0 || g.X+g.W > 24 {
			t.Errorf("panel %q: grid position %+v is outside the 24-column grid", p.Title, g)
		}
		for _, c := range cells {
			if g.X < c[0]+c[2] && c[0] < g.X+g.W && g.Y < c[1]+c[3] && c[1] < g.Y+g.H {
				t.Errorf("panel %q overlaps another at %+v", p.Title, g)
			}
		}
		cells = append(cells, [4]int{g.X, g.Y, g.W, g.H})
		if p.Type == "row" {
			continue
		}
		if len(p.Targets) == 0 || p.Datasource == nil || p.Datasource.Type != "prometheus" {
			t.Errorf("panel %q has no Prometheus query", p.Title)
		}
		refs := map[string]bool{}
		for _, tg := range p.Targets {
			checkQuery(t, "panel "+p.Title, tg.Expr, defined)
			for _, n := range metricName.FindAllString(tg.Expr, -1) {
				shown[n] = true
			}
			if refs[tg.RefID] || tg.RefID == "" {
				t.Errorf("panel %q: refId %q is empty or used twice", p.Title, tg.RefID)
			}
			refs[tg.RefID] = true
		}
	}
	for _, m := range designMetrics {
		if !shown[m] && !shown[m+"_bucket"] && !shown[m+"_count"] {
			t.Errorf("the dashboard does not show %s (DESIGN.md section 13)", m)
		}
	}
	if !slices.ContainsFunc(d.Templating.List, func(r json.RawMessage) bool { return bytes.Contains(r, []byte(`"name": "datasource"`)) }) {
		t.Errorf("the dashboard has no datasource variable, so it cannot be imported into another Grafana")
	}
}
