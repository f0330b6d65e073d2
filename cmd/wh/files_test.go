package main

import (
	"bytes"
	"crypto/rand"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/wormhole-go/wormhole/internal/interop"
)

// chdirTemp runs the test in a fresh directory (receivers write into the
// current directory, as Python does). Tests using it are not parallel.
func chdirTemp(t *testing.T) string {
	t.Helper()
	d := t.TempDir()
	t.Chdir(d)
	return d
}

func makeTree(t *testing.T, root string) map[string][]byte {
	t.Helper()
	files := map[string][]byte{"a.txt": []byte("alpha\n"), "sub/b.bin": make([]byte, 100_000), "sub/deeper/c": {}}
	rand.Read(files["sub/b.bin"])
	for name, data := range files {
		p := filepath.Join(root, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return files
}

func checkTree(t *testing.T, root string, want map[string][]byte) {
	t.Helper()
	for name, data := range want {
		got, err := os.ReadFile(filepath.Join(root, filepath.FromSlash(name)))
		if err != nil || !bytes.Equal(got, data) {
			t.Errorf("%s: %d bytes, err %v; want %d bytes", name, len(got), err, len(data))
		}
	}
}

// TestFilesWithPython sends a file and a directory both ways between wh and
// the Python CLI. Both sides use --no-listen, so the data goes through
// Debian's Python transit relay on 127.0.0.1 (no direct hints on
// non-loopback addresses).
func TestFilesWithPython(t *testing.T) {
	wormholePy := interop.NeedCommand(t, "wormhole")
	mb := interop.StartPythonMailbox(t)
	relay := interop.StartPythonRelay(t)
	ctx := testCtx(t)
	src := t.TempDir()
	dst := chdirTemp(t)
	big := make([]byte, 1<<20+17)
	rand.Read(big)
	bigPath := filepath.Join(src, "big.bin")
	if err := os.WriteFile(bigPath, big, 0o644); err != nil {
		t.Fatal(err)
	}
	tree := makeTree(t, filepath.Join(src, "tree"))
	py := func(args ...string) []string {
		return append([]string{"--relay-url", mb.URL(), "--transit-helper", relay.Hint()}, args...)
	}
	wh := func(cmd string, args ...string) []string {
		return append([]string{cmd, "--relay-url", mb.URL(), "--transit-helper", relay.Hint(), "--no-listen", "--hide-progress"}, args...)
	}

	t.Run("wh-file-to-python", func(t *testing.T) {
		ws, pr := both(
			func() result { return runWH(ctx, "", wh("send", "--code", "51-foo-bar", bigPath)...) },
			func() result {
				return runCmd(ctx, "", wormholePy, py("receive", "--no-listen", "--hide-progress", "--accept-file", "-o", "from-wh.bin", "51-foo-bar")...)
			},
		)
		if ws.code != 0 || pr.code != 0 {
			t.Fatalf("wh send:\n%v\npython receive:\n%v", ws, pr)
		}
		if got, _ := os.ReadFile(filepath.Join(dst, "from-wh.bin")); !bytes.Equal(got, big) {
			t.Fatalf("python received %d bytes, want %d", len(got), len(big))
		}
		for _, want := range []string{"Sending 1.0 MB file named 'big.bin'", "Sending (->relay:tcp:127.0.0.1:", "Confirmation received. Transfer complete."} {
			if !strings.Contains(ws.stderr, want) {
				t.Errorf("wh send stderr lacks %q:\n%s", want, ws.stderr)
			}
		}
	})
	t.Run("python-file-to-wh", func(t *testing.T) {
		ps, wr := both(
			func() result {
				return runCmd(ctx, "", wormholePy, py("send", "--no-listen", "--hide-progress", "--code", "52-foo-bar", bigPath)...)
			},
			func() result { return runWH(ctx, "y\n", wh("receive", "52-foo-bar")...) },
		)
		if ps.code != 0 || wr.code != 0 {
			t.Fatalf("python send:\n%v\nwh receive:\n%v", ps, wr)
		}
		if got, _ := os.ReadFile(filepath.Join(dst, "big.bin")); !bytes.Equal(got, big) {
			t.Fatalf("wh received %d bytes, want %d", len(got), len(big))
		}
		if !strings.Contains(wr.stdout, "ok? (Y/n): ") || !strings.Contains(wr.stderr, "Received file written to big.bin") {
			t.Errorf("wh receive output:\n%v", wr)
		}
		// a second receive of the same name refuses to overwrite
		ps, wr = both(
			func() result {
				return runCmd(ctx, "", wormholePy, py("send", "--no-listen", "--hide-progress", "--code", "53-foo-bar", bigPath)...)
			},
			func() result { return runWH(ctx, "", wh("receive", "--accept-file", "53-foo-bar")...) },
		)
		if wr.code != exitFailed || !strings.Contains(wr.stderr, "Error: refusing to overwrite existing 'big.bin'") {
			t.Errorf("overwrite: %v", wr)
		}
		if ps.code != 1 || !strings.Contains(ps.stderr, "remote error, transfer abandoned: transfer rejected") {
			t.Errorf("python send after refusal: %v", ps)
		}
	})
	t.Run("wh-dir-to-python", func(t *testing.T) {
		ws, pr := both(
			func() result {
				return runWH(ctx, "", wh("send", "--code", "54-foo-bar", filepath.Join(src, "tree"))...)
			},
			func() result {
				return runCmd(ctx, "", wormholePy, py("receive", "--no-listen", "--hide-progress", "--accept-file", "-o", "tree-from-wh", "54-foo-bar")...)
			},
		)
		if ws.code != 0 || pr.code != 0 {
			t.Fatalf("wh send:\n%v\npython receive:\n%v", ws, pr)
		}
		checkTree(t, filepath.Join(dst, "tree-from-wh"), tree)
	})
	t.Run("python-dir-to-wh", func(t *testing.T) {
		ps, wr := both(
			func() result {
				return runCmd(ctx, "", wormholePy, py("send", "--no-listen", "--hide-progress", "--code", "55-foo-bar", filepath.Join(src, "tree"))...)
			},
			func() result { return runWH(ctx, "", wh("receive", "--accept-file", "55-foo-bar")...) },
		)
		if ps.code != 0 || wr.code != 0 {
			t.Fatalf("python send:\n%v\nwh receive:\n%v", ps, wr)
		}
		checkTree(t, filepath.Join(dst, "tree"), tree)
		if !strings.Contains(wr.stderr, "3 files, 100.0 kB (uncompressed)") {
			t.Errorf("wh receive stderr:\n%s", wr.stderr)
		}
	})
}

// TestFilesWhToWh: a file between two wh processes (in-process here),
// through the Python relay, and --only-text refusing it.
func TestFilesWhToWh(t *testing.T) {
	mb := interop.StartPythonMailbox(t)
	relay := interop.StartPythonRelay(t)
	ctx := testCtx(t)
	src := t.TempDir()
	dst := chdirTemp(t)
	data := []byte("some file contents\n")
	p := filepath.Join(src, "note.txt")
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatal(err)
	}
	wh := func(cmd string, args ...string) []string {
		return append([]string{cmd, "--relay-url", mb.URL(), "--transit-helper", relay.Hint(), "--no-listen"}, args...)
	}
	ws, wr := both(
		func() result { return runWH(ctx, "", wh("send", "--code", "61-foo-bar", p)...) },
		func() result {
			return runWH(ctx, "", wh("receive", "--accept-file", "-o", "renamed.txt", "61-foo-bar")...)
		},
	)
	if ws.code != 0 || wr.code != 0 {
		t.Fatalf("send:\n%v\nreceive:\n%v", ws, wr)
	}
	if got, _ := os.ReadFile(filepath.Join(dst, "renamed.txt")); !bytes.Equal(got, data) {
		t.Fatalf("received %q", got)
	}
	if !strings.Contains(wr.stderr, "100% 19 Bytes/19 Bytes ") || strings.Contains(wr.stderr, "\r") {
		t.Errorf("no progress shown:\n%s", wr.stderr)
	}

	ws, wr = both(
		func() result { return runWH(ctx, "", wh("send", "--code", "62-foo-bar", p)...) },
		func() result { return runWH(ctx, "", wh("receive", "--only-text", "62-foo-bar")...) },
	)
	if wr.code != exitFailed || ws.code != exitFailed || !strings.Contains(ws.stderr, "TransferError: remote error, transfer abandoned: transfer rejected") {
		t.Fatalf("--only-text:\nsend %v\nreceive %v", ws, wr)
	}

	// unreadable file inside a directory
	d := filepath.Join(src, "d")
	os.MkdirAll(d, 0o755)
	os.WriteFile(filepath.Join(d, "ok"), []byte("ok"), 0o644)
	if err := os.Symlink(filepath.Join(src, "missing"), filepath.Join(d, "dangling")); err != nil {
		t.Fatal(err)
	}
	r := runWH(ctx, "", wh("send", "--code", "63-foo-bar", d)...)
	if r.code != exitFailed || !strings.Contains(r.stderr, "ERROR:  A file you wanted to send couldn't be read") || !strings.Contains(r.stderr, "dangling") {
		t.Fatalf("unsendable: %v", r)
	}
}
