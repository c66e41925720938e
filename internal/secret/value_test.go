package secret

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"github.com/deltaci/deltaci/internal/core"
)

const plain = "hunter2-SECRET-value"

// holder has a Value both where fmt can call its methods and where it
// cannot (an unexported field).
type holder struct {
	Name   string
	Token  Value
	hidden Value
	Ptr    *Value
	List   []Value
	ByName map[string]Value
}

func newHolder() holder {
	v := New(plain)
	return holder{Name: "h", Token: v, hidden: v, Ptr: &v, List: []Value{v}, ByName: map[string]Value{"k": v}}
}

func assertHidden(t *testing.T, what, out string) {
	t.Helper()
	if strings.Contains(out, plain) || strings.Contains(out, "hunter2") {
		t.Errorf("%s shows the secret: %s", what, out)
	}
}

func TestValueReveal(t *testing.T) {
	t.Parallel()
	if got := New(plain).Reveal(); got != plain {
		t.Errorf("Reveal() = %q, want %q", got, plain)
	}
	if got := (Value{}).Reveal(); got != "" {
		t.Errorf("zero Value Reveal() = %q, want empty", got)
	}
}

func TestValueFmt(t *testing.T) {
	t.Parallel()
	v := New(plain)
	h := newHolder()
	for _, verb := range []string{"%v", "%s", "%q", "%#v", "%+v", "%x", "%X", "%d", "%p", "%10.3s", "%T"} {
		t.Run(verb, func(t *testing.T) {
			t.Parallel()
			direct := fmt.Sprintf(verb, v)
			assertHidden(t, verb+" of a Value", direct)
			if verb != "%T" && verb != "%p" && !strings.Contains(direct, Redacted) {
				t.Errorf("%s of a Value = %q, want it to say %s", verb, direct, Redacted)
			}
			assertHidden(t, verb+" of a *Value", fmt.Sprintf(verb, &v))
			assertHidden(t, verb+" of a struct", fmt.Sprintf(verb, h))
			assertHidden(t, verb+" of a *struct", fmt.Sprintf(verb, &h))
			assertHidden(t, verb+" of a slice", fmt.Sprintf(verb, []Value{v, v}))
		})
	}
	if got := fmt.Sprint(v); got != Redacted {
		t.Errorf("Sprint = %q, want %q", got, Redacted)
	}
}

func TestValueSlog(t *testing.T) {
	t.Parallel()
	handlers := map[string]func(*bytes.Buffer) slog.Handler{
		"text": func(b *bytes.Buffer) slog.Handler { return slog.NewTextHandler(b, nil) },
		"json": func(b *bytes.Buffer) slog.Handler { return slog.NewJSONHandler(b, nil) },
	}
	for name, mk := range handlers {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			var buf bytes.Buffer
			v := New(plain)
			log := slog.New(mk(&buf)).With(slog.Any("with", v))
			log.Info("msg", slog.Any("value", v), "loose", v, slog.Any("holder", newHolder()),
				slog.Group("g", slog.Any("inner", v)), slog.Any("list", []Value{v}))
			log.Error("failed", slog.Any("err", fmt.Errorf("login with %v: %w", v, errors.New("denied"))))
			out := buf.String()
			assertHidden(t, name+" handler", out)
			if !strings.Contains(out, Redacted) {
				t.Errorf("%s handler output does not say %s: %s", name, Redacted, out)
			}
		})
	}
}

func TestValueJSON(t *testing.T) {
	t.Parallel()
	v := New(plain)
	got, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != `"[redacted]"` {
		t.Errorf("json.Marshal(Value) = %s, want %q", got, `"[redacted]"`)
	}
	h := newHolder()
	for name, x := range map[string]any{"pointer": &v, "struct": h, "*struct": &h, "map": map[string]Value{"a": v}} {
		out, err := json.Marshal(x)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		assertHidden(t, "json.Marshal of a "+name, string(out))
	}
}

func TestValueErrors(t *testing.T) {
	t.Parallel()
	v := New(plain)
	base := core.E(core.KindUnauthorized, "login", "token %v rejected", v)
	wrapped := fmt.Errorf("run job: %w", base)
	joined := errors.Join(wrapped, fmt.Errorf("also %s and %q", v, v))
	for _, err := range []error{base, wrapped, joined} {
		assertHidden(t, "error", err.Error())
		assertHidden(t, "error %+v", fmt.Sprintf("%+v", err))
	}
	if core.KindOf(joined) != core.KindUnauthorized {
		t.Errorf("wrapping lost the kind: %v", core.KindOf(joined))
	}
}
