package forge

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"reflect"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// ErrSignature is what every error from Verify matches (errors.Is): the
// delivery cannot be shown to come from the forge. Its message says what
// was missing or wrong, never the secret or the value expected.
var ErrSignature = errors.New("webhook signature is not valid")

// ErrDelivery is what every error from Read matches (errors.Is): the
// delivery is malformed, or names a commit, branch or ref that a run could
// not safely use. Its message names the field and the problem.
var ErrDelivery = errors.New("webhook delivery cannot be read")

// hookError carries its own message and matches its sentinel, so that
// messages read "no X-Hub-Signature-256 header" rather than stacking a
// prefix before every one.
type hookError struct {
	sentinel error
	msg      string
}

func (e *hookError) Error() string        { return e.msg }
func (e *hookError) Is(target error) bool { return target == e.sentinel }

func signatureError(format string, args ...any) error {
	return &hookError{ErrSignature, fmt.Sprintf(format, args...)}
}

func deliveryError(format string, args ...any) error {
	return &hookError{ErrDelivery, fmt.Sprintf(format, args...)}
}

// hookDialect is one forge's way of signing and shaping its deliveries.
type hookDialect struct {
	verify func(secret string, h http.Header, body []byte) error
	read   func(h http.Header, body []byte) (Event, error)
}

var hookDialects = map[Kind]hookDialect{
	GitHub:  {verifyGitHub, readGitHub},
	GitLab:  {verifyGitLab, readGitLab},
	Gitea:   {verifyGitea, giteaReader("X-Gitea-", "X-Forgejo-")},
	Forgejo: {verifyGitea, giteaReader("X-Forgejo-", "X-Gitea-")},
}

// Verify checks that body, with headers h, was sent by a forge of kind k
// that holds secret:
//
//   - GitHub: X-Hub-Signature-256 is "sha256=" and the hex HMAC-SHA256 of
//     the body under the secret.
//   - GitLab: X-Gitlab-Token is the secret itself.
//   - Gitea and Forgejo: any one of X-Gitea-Signature, X-Forgejo-Signature
//     (the bare hex HMAC-SHA256) or X-Hub-Signature-256 is present and
//     valid.
//
// Comparisons take the same time whatever the values. An empty secret
// never verifies. Every error matches ErrSignature.
func Verify(k Kind, secret string, h http.Header, body []byte) error {
	d, ok := hookDialects[k]
	if !ok {
		return signatureError("unknown forge %s", quoteValue(string(k)))
	}
	if secret == "" {
		return signatureError("the hook has no secret set, and an empty secret never verifies")
	}
	return d.verify(secret, h, body)
}

// Read reads a verified delivery from a forge of kind k into an Event.
// A delivery that makes no run (a ping, a tag push, a branch deletion, a
// pull request action or event Delta CI does not run for, "[skip ci]")
// comes back without error and with Ignore saying why. A delivery that
// would make a run has its commit ids and branch names checked: commit
// ids are 40 or 64 lower-case hex digits, and branches are names git
// accepts that cannot pass for an option. Every error matches ErrDelivery.
//
// Read does not bound body: the caller reads at most MaxBody bytes.
func Read(k Kind, h http.Header, body []byte) (Event, error) {
	d, ok := hookDialects[k]
	if !ok {
		return Event{}, deliveryError("unknown forge %s", quoteValue(string(k)))
	}
	e, err := d.read(h, body)
	if err != nil {
		return Event{}, err
	}
	// The forge names these, but they are shown and logged: hold them to
	// what a forge's names are, whatever the event.
	if !isName(e.Repo) {
		return Event{}, deliveryError("%s delivery: repository name %s is not owner/name", e.Type, quoteValue(e.Repo))
	}
	if !isName(e.Sender) {
		return Event{}, deliveryError("%s delivery: sender %s is not a user name", e.Type, quoteValue(e.Sender))
	}
	return e, nil
}

// validHMAC reports whether sig is the hex HMAC-SHA256 of body under
// secret. Hex of either case is accepted; hmac.Equal takes the same time
// for every value of the right length, and the length is public.
func validHMAC(secret string, body []byte, sig string) bool {
	got, err := hex.DecodeString(sig)
	if err != nil || len(got) != sha256.Size {
		return false
	}
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write(body)
	return hmac.Equal(got, mac.Sum(nil))
}

// hubSignature checks an X-Hub-Signature-256 value, "sha256=<hex>".
func hubSignature(secret string, body []byte, value string) error {
	hexsig, ok := strings.CutPrefix(value, "sha256=")
	if !ok {
		return signatureError("X-Hub-Signature-256 is not sha256=<hex>")
	}
	if !validHMAC(secret, body, hexsig) {
		return signatureError("X-Hub-Signature-256 does not match the body")
	}
	return nil
}

// firstHeader returns the first non-empty value among names, and the name it
// was found under.
func firstHeader(h http.Header, names ...string) (value, name string) {
	for _, n := range names {
		if v := strings.TrimSpace(h.Get(n)); v != "" {
			return v, n
		}
	}
	return "", ""
}

// deliveryID returns the delivery's id from the first of names present, or
// an error naming them all.
func deliveryID(h http.Header, names ...string) (string, error) {
	v, name := firstHeader(h, names...)
	if v == "" {
		return "", deliveryError("no %s header", strings.Join(names, " or "))
	}
	if len(v) > 128 || strings.IndexFunc(v, func(r rune) bool { return r <= ' ' || r >= 0x7f }) >= 0 {
		return "", deliveryError("%s %s is not a delivery id", name, quoteValue(v))
	}
	return v, nil
}

// eventName returns the forge's name for the event from the first of names
// present.
func eventName(h http.Header, names ...string) (string, error) {
	v, name := firstHeader(h, names...)
	if v == "" {
		return "", deliveryError("no %s header", strings.Join(names, " or "))
	}
	if len(v) > 64 || strings.IndexFunc(v, func(r rune) bool { return r < ' ' || r >= 0x7f }) >= 0 {
		return "", deliveryError("%s %s is not an event name", name, quoteValue(v))
	}
	return v, nil
}

// otherEvent is the Event of a delivery whose event Delta CI does not run for.
func otherEvent(delivery, name string) Event {
	return Event{
		Delivery: delivery,
		Type:     name,
		Ignore:   fmt.Sprintf("event %s is not one Delta CI runs for", quoteValue(name)),
	}
}

// decodeBody reads body into v, which holds only the fields a dialect needs:
// encoding/json skips the rest and refuses nesting deeper than it can
// bound.
func decodeBody(what string, body []byte, v any) error {
	err := json.Unmarshal(body, v)
	if err == nil {
		return nil
	}
	var typeErr *json.UnmarshalTypeError
	switch {
	case bytes.HasPrefix(bytes.TrimSpace(body), []byte("payload=")):
		return deliveryError("%s delivery: the body is form-encoded: set the hook's content type to application/json", what)
	case errors.As(err, &typeErr) && typeErr.Field == "":
		return deliveryError("%s delivery: the body is a JSON %s, not an object", what, typeErr.Value)
	case errors.As(err, &typeErr):
		return deliveryError("%s delivery: %s is a JSON %s where %s was expected", what, typeErr.Field, typeErr.Value, jsonKind(typeErr.Type))
	default:
		return deliveryError("%s delivery: the body is not JSON: %v", what, err)
	}
}

// jsonKind names the JSON a Go type is read from, for an error message.
func jsonKind(t reflect.Type) string {
	switch t.Kind() {
	case reflect.String:
		return "string"
	case reflect.Bool:
		return "boolean"
	case reflect.Slice, reflect.Array:
		return "array"
	case reflect.Struct, reflect.Map, reflect.Pointer:
		return "object"
	default:
		return "number"
	}
}

// pushDelivery is what a forge's push delivery says, read into the terms the
// checks below share.
type pushDelivery struct {
	// tag is set when the forge's event is itself a tag push.
	tag     bool
	ref     string
	before  string
	after   string
	deleted bool
	message string
	repo    string
	sender  string
}

// event makes the Event of a push: ignored for a tag, a deletion or
// "[skip ci]", refused when its ref or commits could not make a safe run.
func (p pushDelivery) event(delivery string) (Event, error) {
	e := Event{Delivery: delivery, Type: EventPush, Repo: p.repo, Sender: p.sender}
	if p.tag || strings.HasPrefix(p.ref, "refs/tags/") {
		e.Ignore = "a tag push: Delta CI runs for branches"
		return e, nil
	}
	if p.ref == "" {
		return Event{}, deliveryError("push delivery: no ref")
	}
	if p.deleted || isZeroID(p.after) {
		e.Ignore = "a branch deletion"
		return e, nil
	}
	branch, ok := strings.CutPrefix(p.ref, "refs/heads/")
	if !ok {
		return Event{}, deliveryError("push delivery: ref %s is not refs/heads/<branch>", quoteValue(p.ref))
	}
	if err := checkBranch(branch); err != nil {
		return Event{}, deliveryError("push delivery: ref %s: %v", quoteValue(p.ref), err)
	}
	if !isCommitID(p.after) || isZeroID(p.after) {
		return Event{}, deliveryError("push delivery: after is not a commit id: %s", quoteValue(p.after))
	}
	if !isCommitID(p.before) || len(p.before) != len(p.after) {
		return Event{}, deliveryError("push delivery: before is not a commit id: %s", quoteValue(p.before))
	}
	if p.repo == "" {
		return Event{}, deliveryError("push delivery: no repository name")
	}
	e.Ref, e.Branch, e.Before, e.Commit, e.Message = p.ref, branch, p.before, p.after, p.message
	if skipCI(p.message) {
		e.Ignore = "the head commit's message asks to skip CI"
	}
	return e, nil
}

// pullDelivery is what a forge's pull (or merge) request delivery says.
type pullDelivery struct {
	what   string // "pull request", or "merge request" on GitLab
	number int
	action string
	// ignore, set by the dialect, says why this action makes no run.
	ignore  string
	head    string // the source branch
	base    string // the target branch
	commit  string
	message string
	fork    bool
	ref     string
	repo    string
	sender  string
}

// event makes the Event of a pull request: ignored when the dialect said
// so or for "[skip ci]", refused when its branches or commit could not
// make a safe run.
func (p pullDelivery) event(delivery string) (Event, error) {
	if p.number <= 0 {
		return Event{}, deliveryError("%s delivery: number %d is not a %s number", p.what, p.number, p.what)
	}
	e := Event{Delivery: delivery, Type: EventPullRequest, Number: p.number, Action: p.action, Repo: p.repo, Sender: p.sender}
	if p.ignore != "" {
		e.Ignore = p.ignore
		return e, nil
	}
	if err := checkBranch(p.head); err != nil {
		return Event{}, deliveryError("%s delivery: source branch %s: %v", p.what, quoteValue(p.head), err)
	}
	if err := checkBranch(p.base); err != nil {
		return Event{}, deliveryError("%s delivery: target branch %s: %v", p.what, quoteValue(p.base), err)
	}
	if !isCommitID(p.commit) || isZeroID(p.commit) {
		return Event{}, deliveryError("%s delivery: head is not a commit id: %s", p.what, quoteValue(p.commit))
	}
	if p.repo == "" {
		return Event{}, deliveryError("%s delivery: no repository name", p.what)
	}
	e.Ref, e.Branch, e.Target, e.Commit, e.Message, e.Fork = p.ref, p.head, p.base, p.commit, p.message, p.fork
	if skipCI(p.message) {
		e.Ignore = "the head commit's message asks to skip CI"
	}
	return e, nil
}

// actionIgnored is the reason a pull request action makes no run.
func actionIgnored(what, action string) string {
	return fmt.Sprintf("%s action %s is not one Delta CI runs for", what, quoteValue(action))
}

// isCommitID reports whether s is a full SHA-1 or SHA-256 object name as
// git prints it: lower-case hex.
func isCommitID(s string) bool {
	if len(s) != 40 && len(s) != 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// isZeroID reports whether s is the all-zero object name forges send for a
// ref that does not exist (before a creation, after a deletion).
func isZeroID(s string) bool {
	return (len(s) == 40 || len(s) == 64) && strings.Trim(s, "0") == ""
}

// checkBranch says why name cannot be used as a branch in a run, or nil.
// It holds git's own rules for a ref name (git check-ref-format), and
// refuses what could pass for an option on a command line.
func checkBranch(name string) error {
	switch {
	case name == "":
		return errors.New("the branch name is empty")
	case len(name) > 255:
		return errors.New("the branch name is longer than 255 bytes")
	case !utf8.ValidString(name):
		return errors.New("the branch name is not UTF-8")
	case name[0] == '-':
		return errors.New("the branch name begins with '-'")
	case strings.IndexFunc(name, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }) >= 0:
		return errors.New("the branch name holds a space or a control character")
	case strings.ContainsAny(name, "~^:?*[\\"):
		return errors.New("the branch name holds one of ~ ^ : ? * [ \\")
	case strings.Contains(name, ".."):
		return errors.New(`the branch name holds ".."`)
	case strings.Contains(name, "@{") || name == "@":
		return errors.New(`the branch name holds "@{" or is "@"`)
	case strings.HasSuffix(name, ".") || strings.HasSuffix(name, "/"):
		return errors.New("the branch name ends with '.' or '/'")
	}
	for _, part := range strings.Split(name, "/") {
		switch {
		case part == "":
			return errors.New(`the branch name holds "//" or begins with '/'`)
		case part[0] == '.':
			return errors.New("a part of the branch name begins with '.'")
		case strings.HasSuffix(part, ".lock"):
			return errors.New(`a part of the branch name ends with ".lock"`)
		}
	}
	return nil
}

// isName reports whether s could be a forge's name of a user or a
// repository: empty, or at most 255 bytes of UTF-8 with no space or
// control character.
func isName(s string) bool {
	return len(s) <= 255 && utf8.ValidString(s) &&
		strings.IndexFunc(s, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }) < 0
}

// skipCI reports whether a head commit's message asks for no run, as
// GitHub and GitLab read it: "[skip ci]" or "[ci skip]" in any case.
func skipCI(message string) bool {
	m := strings.ToLower(message)
	return strings.Contains(m, "[skip ci]") || strings.Contains(m, "[ci skip]")
}

// quoteValue quotes s for an error message, cut to a length a log line bears:
// the values quoted come from the delivery.
func quoteValue(s string) string {
	const most = 80
	if len(s) <= most {
		return strconv.Quote(s)
	}
	cut := most
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return strconv.Quote(s[:cut]) + fmt.Sprintf("… (%d bytes)", len(s))
}
