package secret

import (
	"context"
	"strings"

	"github.com/deltaci/deltaci/internal/core"
)

// EnvPrefix starts the name of the variable that holds a secret: secret
// TOKEN is read from DELTACI_SECRET_TOKEN.
const EnvPrefix = "DELTACI_SECRET_"

// Env is the Provider that reads secrets from an environment given as
// KEY=VALUE entries (os.Environ's format), never from the process itself,
// so tests and embedders choose what it sees.
type Env struct {
	vars map[string]string
}

// NewEnv returns an Env over environ. When a key repeats, the last entry
// wins, as it does for a process started with that environment.
func NewEnv(environ []string) *Env {
	vars := map[string]string{}
	for _, kv := range environ {
		if k, v, ok := strings.Cut(kv, "="); ok && strings.HasPrefix(k, EnvPrefix) {
			vars[k] = v
		}
	}
	return &Env{vars: vars}
}

// Lookup implements Provider. A variable that is set but empty or blank is
// a KindInvalid error rather than a miss, so a typo in a deployment does not
// fall through to another provider unnoticed.
func (e *Env) Lookup(ctx context.Context, name string) (Value, error) {
	if err := checkLookup(ctx, name); err != nil {
		return Value{}, err
	}
	key := EnvPrefix + name
	v, ok := e.vars[key]
	if !ok {
		return Value{}, missing(name, "export "+key)
	}
	if blank(v) {
		return Value{}, core.E(core.KindInvalid, lookupOp(name), "%s is set but empty or blank", key)
	}
	return New(v), nil
}
