package core

import "strings"

// InputKind says what one entry of a job's inputs is.
type InputKind int

// The kinds of Input.
const (
	// InputGlob adds the files a doublestar glob matches.
	InputGlob InputKind = iota
	// InputExclude removes the files a glob matches ("!glob" in the file).
	InputExclude
	// InputGo adds a Go module's files ({go: ./dir} in the file), and
	// those of the modules it reaches through local replace directives.
	InputGo
	// InputWorkspace adds a JavaScript workspace package's files
	// ({workspace: name}), and those of the workspace packages it depends on.
	InputWorkspace
)

// Input is one entry of JobSpec.Inputs, decoded. The entries are read in
// order, and the last one that matches a path decides whether the path is
// an input (as in .gitignore).
type Input struct {
	Kind InputKind
	// Value is the glob (without "!"), the module's directory from the top
	// of the repository ("." for the top), or the package's name.
	Value string
}

// JobSpec.Inputs holds each entry as one string: a glob, "!" and a glob,
// or one of these prefixes and the value. A glob never starts with "/", so
// they cannot be mistaken for one.
const (
	inputGoPrefix        = "/go:"
	inputWorkspacePrefix = "/workspace:"
)

// ParseInput decodes one entry of JobSpec.Inputs.
func ParseInput(s string) Input {
	switch {
	case strings.HasPrefix(s, "!"):
		return Input{Kind: InputExclude, Value: s[1:]}
	case strings.HasPrefix(s, inputGoPrefix):
		return Input{Kind: InputGo, Value: s[len(inputGoPrefix):]}
	case strings.HasPrefix(s, inputWorkspacePrefix):
		return Input{Kind: InputWorkspace, Value: s[len(inputWorkspacePrefix):]}
	}
	return Input{Kind: InputGlob, Value: s}
}

// String is the entry as JobSpec.Inputs holds it.
func (i Input) String() string {
	switch i.Kind {
	case InputExclude:
		return "!" + i.Value
	case InputGo:
		return inputGoPrefix + i.Value
	case InputWorkspace:
		return inputWorkspacePrefix + i.Value
	}
	return i.Value
}

// Display is the entry as a person writes it in .deltaci.yml.
func (i Input) Display() string {
	switch i.Kind {
	case InputExclude:
		return "!" + i.Value
	case InputGo:
		if i.Value == "." {
			return "{go: ./}"
		}
		return "{go: ./" + i.Value + "}"
	case InputWorkspace:
		return "{workspace: " + i.Value + "}"
	}
	return i.Value
}

// Inferred reports whether the entry is read from an ecosystem's files
// (InputGo, InputWorkspace) rather than matched as a glob.
func (i Input) Inferred() bool { return i.Kind == InputGo || i.Kind == InputWorkspace }
