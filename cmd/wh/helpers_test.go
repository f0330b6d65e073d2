package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"
)

// syncBuffer is a bytes.Buffer safe for the concurrent writes a command
// makes (its "Waiting for …" notices come from a timer goroutine).
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

type result struct {
	stdout, stderr string
	code           int
}

func (r result) String() string {
	return fmt.Sprintf("exit %d\n--- stdout:\n%s--- stderr:\n%s", r.code, r.stdout, r.stderr)
}

// testCtx is a safety net only; no test asserts time.
func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// runWH runs wh in-process with the given stdin.
func runWH(ctx context.Context, stdin string, args ...string) result {
	var out, errb syncBuffer
	e := &env{
		stdin: strings.NewReader(stdin), stdout: &out, stderr: &errb,
		getenv: safeGetenv, stdinFd: -1, slowNotice: time.Second,
	}
	code := run(ctx, e, args)
	return result{out.String(), errb.String(), code}
}

// Tests must never reach the public servers: a forgotten --relay-url or
// --transit-helper points at a dead loopback port instead.
const (
	deadRelayURL = "ws://127.0.0.1:9/v1"
	deadTransit  = "tcp:127.0.0.1:9"
)

func safeGetenv(k string) string {
	switch k {
	case "WORMHOLE_RELAY_URL":
		return deadRelayURL
	case "WORMHOLE_TRANSIT_HELPER":
		return deadTransit
	}
	return ""
}

// safeEnviron is the process environment with the same safety net, for
// external peers (the Python CLI reads these variables too).
func safeEnviron() []string {
	return append(os.Environ(), "PYTHONDONTWRITEBYTECODE=1",
		"WORMHOLE_RELAY_URL="+deadRelayURL, "WORMHOLE_TRANSIT_HELPER="+deadTransit)
}

// runCmd runs an external peer.
func runCmd(ctx context.Context, stdin string, name string, args ...string) result {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Stdin = strings.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	cmd.Env = safeEnviron()
	err := cmd.Run()
	code := 0
	if err != nil {
		code = -1
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		}
	}
	return result{out.String(), errb.String(), code}
}

// both runs a and b concurrently and returns their results.
func both(a, b func() result) (result, result) {
	var ra, rb result
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); ra = a() }()
	go func() { defer wg.Done(); rb = b() }()
	wg.Wait()
	return ra, rb
}
