package cli

import (
	"fmt"
	"io"
	"os"
	"strings"
)

// maxSecretFile bounds what a NAME_FILE setting reads: a token or a URL,
// never a large file named by mistake.
const maxSecretFile = 64 << 10

// fromEnvFiles fills each empty setting from the file that NAME_FILE names,
// as container secrets are given (Compose and Kubernetes mount them as
// files), after fromEnv has tried NAME itself. One trailing newline is
// dropped. Setting both NAME and NAME_FILE is an error, as is an empty or
// unreadable file.
func fromEnvFiles(e env, pairs ...any) error {
	for i := 0; i+1 < len(pairs); i += 2 {
		p, name := pairs[i].(*string), pairs[i+1].(string)
		path := e.get(name + "_FILE")
		if path == "" {
			continue
		}
		if e.get(name) != "" {
			return usage(fmt.Errorf("both %s and %s_FILE are set: give one", name, name))
		}
		if *p != "" {
			continue // a flag wins over the environment
		}
		v, err := readSecretFile(path)
		if err != nil {
			return usage(fmt.Errorf("%s_FILE: %w", name, err))
		}
		*p = v
	}
	return nil
}

func readSecretFile(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxSecretFile+1))
	if err != nil {
		return "", fmt.Errorf("reading %s: %w", path, err)
	}
	if len(b) > maxSecretFile {
		return "", fmt.Errorf("%s is larger than %d bytes: it should hold one value", path, maxSecretFile)
	}
	v := string(b)
	if t, ok := strings.CutSuffix(v, "\r\n"); ok {
		v = t
	} else {
		v = strings.TrimSuffix(v, "\n")
	}
	if strings.TrimSpace(v) == "" {
		return "", fmt.Errorf("%s is empty", path)
	}
	if strings.ContainsAny(v, "\r\n") {
		return "", fmt.Errorf("%s holds more than one line: it should hold one value", path)
	}
	return v, nil
}
