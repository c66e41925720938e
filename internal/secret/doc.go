// Package secret keeps secret values out of logs, the database and job
// output.
//
//   - Value holds a secret and shows "[redacted]" to fmt, log/slog and
//     encoding/json; Reveal is the only way to read it.
//   - Provider looks values up by name: Env (DELTACI_SECRET_<NAME> in an
//     injected environment), File (NAME=value lines), Dir (one file per
//     secret, for multi-line values), and Chain to combine them. Resolve
//     fetches a job's secrets and reports every missing one at once.
//   - Masker is the io.Writer a job's output goes through: it replaces each
//     value, its base64 (at every byte offset, both alphabets, padded or
//     not, and wrapped at 64 and 76 columns), its hex (lower and upper
//     case, and wrapped at 60 columns), URL and JSON escaped forms and
//     each of its lines with "***", even when a secret is split across
//     writes.
//
// Masking catches a job that prints a secret by mistake. It cannot stop
// one that means to leak it: the job can encrypt, split or reorder the
// value first. That is why values are sent only to jobs of trusted runs;
// this package does not decide that, callers do.
package secret
