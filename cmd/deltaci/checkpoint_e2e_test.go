package main_test

import (
	"crypto/ed25519"
	"encoding/hex"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/deltaci/deltaci/internal/artifact/eventlog"
	"github.com/deltaci/deltaci/internal/store/storetest"
)

// signingPublicKey is the public half of the seed in a server's
// signing.key file.
func signingPublicKey(t *testing.T, path string) ed25519.PublicKey {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	seed, err := hex.DecodeString(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatal(err)
	}
	return ed25519.NewKeyFromSeed(seed).Public().(ed25519.PublicKey)
}

// checkpointed returns the seqs a server logged checkpoints of.
func checkpointed(p *proc) []int64 {
	var seqs []int64
	for _, rec := range p.records() {
		if rec["msg"] == "checkpointed the event log" {
			if seq, ok := rec["seq"].(float64); ok {
				seqs = append(seqs, int64(seq))
			}
		}
	}
	return seqs
}

// pushThrough pushes a one-file tree through a server's store and returns
// its log's head afterwards.
func pushThrough(t *testing.T, srv *server, name string) int64 {
	t.Helper()
	dir := t.TempDir()
	write(t, dir, "out/"+name+".txt", name+"\n")
	cmd := command(dir, "artifacts", "--server", srv.url()+"/store", "push", "out", "--ref", "outputs/"+name+":1")
	cmd.Env = childEnv(srv.userEnv()...)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("push %s: %v\n%s", name, err, out)
	}
	cmd = command(dir, "artifacts", "--server", srv.url()+"/store", "replay", "--verify", "--json")
	cmd.Env = childEnv(srv.userEnv()...)
	out, err := cmd.Output()
	var rep struct {
		Head int64 `json:"head"`
	}
	if err != nil || json.Unmarshal(out, &rep) != nil {
		t.Fatalf("replay --verify --json: %v\n%s", err, out)
	}
	return rep.Head
}

// TestServerCheckpointsWithItsSigningKey: a deltaci server checkpoints its
// artifact store's log with its signing key, keeps the newest checkpoint in
// its data directory, and verifies the log against it.
func TestServerCheckpointsWithItsSigningKey(t *testing.T) {
	t.Parallel()
	onBothDatabases(t, func(t *testing.T, database string) {
		srv := startServer(t, serverOpts{database: database, extraArgs: []string{"--checkpoint-interval", "100ms"}})
		head := pushThrough(t, srv, "first")
		eventually(t, "a checkpoint of the head", func() bool {
			seqs := checkpointed(srv.proc)
			return len(seqs) > 0 && seqs[len(seqs)-1] >= head
		})
		pub := signingPublicKey(t, filepath.Join(srv.dataDir, "signing.key"))
		b, err := os.ReadFile(filepath.Join(srv.dataDir, "checkpoint.json"))
		if err != nil {
			t.Fatal(err)
		}
		inFile, err := eventlog.ParseCheckpoint(b)
		if err != nil || inFile.Seq < head {
			t.Fatalf("checkpoint file: %+v, %v; want event %d or later", inFile.Head(), err, head)
		}
		if err := inFile.Verify([]ed25519.PublicKey{pub}); err != nil {
			t.Errorf("the checkpoint is not signed with the server's signing key: %v", err)
		}
		cmd := command(t.TempDir(), "artifacts", "--server", srv.url()+"/store", "checkpoint")
		cmd.Env = childEnv(srv.userEnv()...)
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("checkpoint: %v", err)
		}
		latest, err := eventlog.ParseCheckpoint(out)
		if err != nil || latest.Seq < inFile.Seq || latest.Verify([]ed25519.PublicKey{pub}) != nil {
			t.Errorf("deltaci artifacts checkpoint = %s, %v", out, err)
		}
		cmd = command(t.TempDir(), "artifacts", "--server", srv.url()+"/store", "replay", "--verify", "--json")
		cmd.Env = childEnv(srv.userEnv()...)
		out, err = cmd.Output()
		var rep struct {
			Checkpoints    int64 `json:"checkpoints"`
			SignersChecked bool  `json:"signers_checked"`
		}
		if err != nil || json.Unmarshal(out, &rep) != nil || rep.Checkpoints < 1 || !rep.SignersChecked {
			t.Errorf("replay --verify --json through the server: %v\n%s", err, out)
		}
	})
}

// TestOnlyTheLeaderCheckpoints: of two servers on one PostgreSQL database,
// only the leader signs checkpoints, whichever of them was written to.
func TestOnlyTheLeaderCheckpoints(t *testing.T) {
	t.Parallel()
	database := storetest.PostgresURL(t)
	store := t.TempDir()
	a := startServer(t, serverOpts{database: database, extraArgs: []string{"--checkpoint-interval", "100ms", "--store", store}})
	// Replicas share the signing key, as --signing-key says they must.
	b := startServer(t, serverOpts{database: database, extraArgs: []string{"--checkpoint-interval", "100ms", "--store", store,
		"--signing-key", filepath.Join(a.dataDir, "signing.key")}})
	heads := []int64{pushThrough(t, a, "through-a"), pushThrough(t, b, "through-b")}
	var leader, follower *server
	eventually(t, "a checkpoint of both pushes", func() bool {
		for _, s := range [][2]*server{{a, b}, {b, a}} {
			if seqs := checkpointed(s[0].proc); len(seqs) > 0 && seqs[len(seqs)-1] >= heads[1] {
				leader, follower = s[0], s[1]
				return true
			}
		}
		return false
	})
	if seqs := checkpointed(follower.proc); len(seqs) > 0 {
		t.Errorf("the follower signed checkpoints too: %v (the leader: %v)", seqs, checkpointed(leader.proc))
	}
	if _, err := os.Stat(filepath.Join(follower.dataDir, "checkpoint.json")); !os.IsNotExist(err) {
		t.Errorf("the follower wrote a checkpoint file: %v", err)
	}
}

// TestSigningKeyRotationKeepsCheckpoints: after the signing key changes,
// the checkpoints of the old key stop the server from signing and fail
// replay --verify, until the old key's public half is given with
// --checkpoint-public-key.
func TestSigningKeyRotationKeepsCheckpoints(t *testing.T) {
	t.Parallel()
	srv := startServer(t, serverOpts{extraArgs: []string{"--checkpoint-interval", "100ms"}})
	head := pushThrough(t, srv, "before")
	eventually(t, "a checkpoint of the head", func() bool {
		seqs := checkpointed(srv.proc)
		return len(seqs) > 0 && seqs[len(seqs)-1] >= head
	})
	old := hex.EncodeToString(signingPublicKey(t, filepath.Join(srv.dataDir, "signing.key")))
	next := filepath.Join(t.TempDir(), "next.key")
	write(t, filepath.Dir(next), "next.key", strings.Repeat("5a", ed25519.SeedSize)+"\n")
	if err := os.Chmod(next, 0o600); err != nil {
		t.Fatal(err)
	}
	verify := func() result {
		cmd := command(t.TempDir(), "artifacts", "--server", srv.url()+"/store", "replay", "--verify")
		cmd.Env = childEnv(srv.userEnv()...)
		var r result
		out, err := cmd.CombinedOutput()
		r.stderr = string(out)
		if ee, ok := err.(*exec.ExitError); ok {
			r.code = ee.ExitCode()
		}
		return r
	}

	srv.kill(t)
	srv.args = append(srv.args, "--signing-key", next)
	srv.restart(t)
	srv.waitRecord(t, "the event log does not match its last checkpoint: signing no checkpoint until this is resolved (replay --verify names the problem)", 0)
	if r := verify(); r.code != 1 || !strings.Contains(r.stderr, "is not a checkpoint key of this store") {
		t.Errorf("replay --verify after the key changed: exit %d\n%s", r.code, r.stderr)
	}

	srv.kill(t)
	srv.args = append(srv.args, "--checkpoint-public-key", old)
	srv.restart(t)
	after := pushThrough(t, srv, "after")
	eventually(t, "a checkpoint signed with the new key", func() bool {
		b, err := os.ReadFile(filepath.Join(srv.dataDir, "checkpoint.json"))
		if err != nil {
			return false
		}
		c, err := eventlog.ParseCheckpoint(b)
		return err == nil && c.Seq >= after && c.Verify([]ed25519.PublicKey{signingPublicKey(t, next)}) == nil
	})
	if r := verify(); r.code != 0 {
		t.Errorf("replay --verify with the old key's public half trusted: exit %d\n%s", r.code, r.stderr)
	}
}

// TestServerRefusesBadCheckpointFlags: the checkpoint settings are checked
// before the server starts.
func TestServerRefusesBadCheckpointFlags(t *testing.T) {
	t.Parallel()
	for _, bad := range [][]string{{"--checkpoint-interval", "0s"}, {"--checkpoint-public-key", "abc"}} {
		args := append([]string{"server", "--listen", "127.0.0.1:0", "--data-dir", t.TempDir()}, bad...)
		if r := deltaci(t, t.TempDir(), args...); r.code != 2 || !strings.Contains(r.stderr, bad[0]) {
			t.Errorf("server %v: exit %d, want 2\n%s", bad, r.code, r.stderr)
		}
	}
}
