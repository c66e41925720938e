package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// clockTicks is USER_HZ, the unit of /proc's CPU times (100 on Linux for
// every architecture Go supports).
const clockTicks = 100

// cpuSample is the CPU time spent so far by the server, by PostgreSQL's
// processes and by this harness.
type cpuSample struct {
	server, postgres map[int]time.Duration
	harness          time.Duration
}

// sampleCPU reads the CPU times of serverPID, of every process named
// postgres, and of this process. Where /proc cannot be read the figures
// stay empty and the breakdown says so.
func sampleCPU(serverPID int) cpuSample {
	s := cpuSample{server: map[int]time.Duration{}, postgres: map[int]time.Duration{}}
	if d, ok := procCPU(serverPID); ok {
		s.server[serverPID] = d
	}
	dirs, _ := filepath.Glob("/proc/[0-9]*")
	for _, dir := range dirs {
		pid, err := strconv.Atoi(filepath.Base(dir))
		if err != nil {
			continue
		}
		comm, err := os.ReadFile(filepath.Join(dir, "comm"))
		if err != nil || strings.TrimSpace(string(comm)) != "postgres" {
			continue
		}
		if d, ok := procCPU(pid); ok {
			s.postgres[pid] = d
		}
	}
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) == nil {
		s.harness = time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	return s
}

// procCPU is a process's user + system time from /proc/<pid>/stat.
func procCPU(pid int) (time.Duration, bool) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, false
	}
	// The command name may hold spaces; the fields after it are fixed.
	i := strings.LastIndexByte(string(b), ')')
	if i < 0 {
		return 0, false
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0, false
	}
	ut, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, false
	}
	return time.Duration(ut+st) * time.Second / clockTicks, true
}

// sum adds the CPU each process spent between a and b; a process that
// started in between counts whole.
func sum(a, b map[int]time.Duration) time.Duration {
	var t time.Duration
	for pid, d := range b {
		t += d - a[pid]
	}
	return t
}

// cpuPerJob describes where the CPU of n jobs went between a and b.
func cpuPerJob(a, b cpuSample, n int64) string {
	if len(b.server) == 0 {
		return "CPU per job: /proc not readable"
	}
	per := func(d time.Duration) string {
		return fmt.Sprintf("%.2f ms", float64(d)/float64(time.Millisecond)/float64(n))
	}
	return fmt.Sprintf("CPU per job: server %s, PostgreSQL %s, harness %s",
		per(sum(a.server, b.server)), per(sum(a.postgres, b.postgres)), per(b.harness-a.harness))
}
