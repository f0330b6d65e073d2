package main

import (
	"archive/zip"
	"bytes"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func zipOf(t testing.TB, files map[string]string) []byte {
	var b bytes.Buffer
	zw := zip.NewWriter(&b)
	for name, data := range files {
		w, err := zw.Create(name)
		if err != nil {
			t.Fatal(err)
		}
		w.Write([]byte(data))
	}
	zw.Close()
	return b.Bytes()
}

func unzipBytes(t testing.TB, data []byte, limit int64) (string, error) {
	base := t.TempDir()
	dest := filepath.Join(base, "out")
	err := unzipInto(bytes.NewReader(data), int64(len(data)), dest, limit)
	// nothing may appear next to dest
	entries, _ := os.ReadDir(base)
	for _, e := range entries {
		if e.Name() != "out" {
			t.Fatalf("zip wrote %q outside the destination", e.Name())
		}
	}
	return dest, err
}

func TestUnzipInto(t *testing.T) {
	dest, err := unzipBytes(t, zipOf(t, map[string]string{"a": "1", "d/b": "22", "d/e/": ""}), 100)
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(filepath.Join(dest, "d", "b")); string(b) != "22" {
		t.Fatalf("d/b = %q", b)
	}
	if st, err := os.Stat(filepath.Join(dest, "d", "e")); err != nil || !st.IsDir() {
		t.Fatalf("d/e: %v", err)
	}
	for _, evil := range []string{"../escape", "/abs", "d/../../escape"} {
		if _, err := unzipBytes(t, zipOf(t, map[string]string{evil: "x"}), 100); err == nil || !strings.Contains(err.Error(), "malicious") {
			t.Errorf("%q: err %v", evil, err)
		}
	}
	// more data than offered (zip bomb guard)
	if _, err := unzipBytes(t, zipOf(t, map[string]string{"big": strings.Repeat("z", 10000)}), 100); err == nil {
		t.Errorf("over-limit zip accepted")
	}
}

func FuzzUnzip(f *testing.F) {
	f.Add(zipOf(f, map[string]string{"a": "1", "d/b": "22"}))
	f.Add(zipOf(f, map[string]string{"../x": "1"}))
	f.Add(zipOf(f, map[string]string{"big": strings.Repeat("z", 5000)}))
	f.Add([]byte("PK\x03\x04 not really"))
	f.Add(zipEntries(f, zipEntry{name: "ln", data: "/tmp", mode: fs.ModeSymlink | 0o777}, zipEntry{name: "ln/x", data: "x"}))
	f.Add(zipEntries(f, zipEntry{name: "d/", mode: fs.ModeDir | 0o755}, zipEntry{name: "d/../../x", data: "x"}))
	f.Fuzz(func(t *testing.T, data []byte) {
		dest, err := unzipBytes(t, data, 4096)
		if err != nil {
			return
		}
		var total int64
		filepath.WalkDir(dest, func(p string, d fs.DirEntry, err error) error {
			if err == nil && d.Type().IsRegular() {
				if info, err := d.Info(); err == nil {
					total += info.Size()
				}
			}
			return nil
		})
		if total > 4096 {
			t.Fatalf("extracted %d bytes past the 4096 limit", total)
		}
	})
}

// zipEntry is one entry of a hand-made (possibly hostile) zip.
type zipEntry struct {
	name, data string
	mode       fs.FileMode // 0: regular 0644
}

func zipEntries(t testing.TB, entries ...zipEntry) []byte {
	var b bytes.Buffer
	zw := zip.NewWriter(&b)
	for _, e := range entries {
		h := &zip.FileHeader{Name: e.name, Method: zip.Deflate}
		if e.mode != 0 {
			h.SetMode(e.mode)
		} else {
			h.SetMode(0o644)
		}
		w, err := zw.CreateHeader(h)
		if err != nil {
			t.Fatal(err)
		}
		w.Write([]byte(e.data))
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// TestUnzipHostile: no entry of a hostile zip writes outside the
// destination, whatever the names, link entries and links already there.
func TestUnzipHostile(t *testing.T) {
	type setup func(t *testing.T, dest, outside string)
	link := func(name, target string) setup {
		return func(t *testing.T, dest, outside string) {
			if err := os.MkdirAll(dest, 0o755); err != nil {
				t.Fatal(err)
			}
			if target == "OUTSIDE" {
				target = outside
			}
			if err := os.Symlink(target, filepath.Join(dest, name)); err != nil {
				t.Fatal(err)
			}
		}
	}
	cases := []struct {
		name    string
		setup   setup
		entries []zipEntry
	}{
		{"dotdot", nil, []zipEntry{{name: "../escape", data: "x"}}},
		{"dotdot-inside", nil, []zipEntry{{name: "d/../../escape", data: "x"}}},
		{"absolute", nil, []zipEntry{{name: "/tmp/abs-escape", data: "x"}}},
		{"dotdot-dir", nil, []zipEntry{{name: "../escdir/", mode: fs.ModeDir | 0o755}}},
		// a link entry pointing out, then a file through it
		{"link-entry-then-file", nil, []zipEntry{
			{name: "ln", data: "OUTSIDE_TARGET", mode: fs.ModeSymlink | 0o777},
			{name: "ln/victim", data: "pwned"},
		}},
		// a link already in the destination that leads out
		{"existing-link-dir-out", link("ln", "OUTSIDE"), []zipEntry{{name: "ln/victim", data: "pwned"}}},
		{"existing-link-root", link("ln", "/"), []zipEntry{{name: "ln/tmp/victim", data: "pwned"}}},
		{"existing-link-file-out", link("victim", "OUTSIDE/victim"), []zipEntry{{name: "victim", data: "pwned"}}},
		{"existing-link-relative-out", link("ln", "../outside"), []zipEntry{{name: "ln/victim", data: "pwned"}}},
		// a link inside the destination: still never written through
		{"existing-link-inside", link("alias", "real"), []zipEntry{{name: "real", data: "ok"}, {name: "alias", data: "pwned"}}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			base := t.TempDir()
			dest := filepath.Join(base, "out")
			outside := filepath.Join(base, "outside")
			if err := os.MkdirAll(outside, 0o755); err != nil {
				t.Fatal(err)
			}
			// the link-entry case: make its text name the outside dir
			for i, e := range c.entries {
				if e.data == "OUTSIDE_TARGET" {
					c.entries[i].data = outside
				}
			}
			if c.setup != nil {
				c.setup(t, dest, outside)
			}
			data := zipEntries(t, c.entries...)
			zf := filepath.Join(base, "in.zip")
			if err := os.WriteFile(zf, data, 0o644); err != nil {
				t.Fatal(err)
			}
			err := unzipInto(bytes.NewReader(data), int64(len(data)), dest, 1<<20)
			if err == nil {
				t.Fatalf("hostile zip accepted")
			}
			t.Logf("refused: %v", err)
			// nothing outside dest changed: base holds only in.zip, out,
			// outside (empty); no file named like the payload anywhere
			// outside dest
			entries, _ := os.ReadDir(base)
			for _, e := range entries {
				if n := e.Name(); n != "in.zip" && n != "out" && n != "outside" {
					t.Errorf("wrote %q next to the destination", n)
				}
			}
			if got, _ := os.ReadDir(outside); len(got) != 0 {
				t.Errorf("wrote into the outside directory: %v", got)
			}
			for _, p := range []string{"/tmp/abs-escape", "/tmp/victim", filepath.Join(os.TempDir(), "escape")} {
				if _, err := os.Lstat(p); err == nil && !strings.HasPrefix(p, base) {
					if b, _ := os.ReadFile(p); string(b) == "pwned" || string(b) == "x" {
						t.Errorf("wrote %s", p)
					}
				}
			}
			// no link was created by the zip
			filepath.WalkDir(dest, func(p string, d fs.DirEntry, err error) error {
				if err == nil && d.Type()&fs.ModeSymlink != 0 {
					if c.setup == nil {
						t.Errorf("zip created a link %s", p)
					}
				}
				return nil
			})
		})
	}
}

// TestUnzipLinkEntryIsFile: a link entry alone becomes a regular file with
// the link text (Python's zipfile does the same); no link is made.
func TestUnzipLinkEntryIsFile(t *testing.T) {
	data := zipEntries(t, zipEntry{name: "ln", data: "/etc/passwd", mode: fs.ModeSymlink | 0o777}, zipEntry{name: "a/b", data: "b"})
	dest := filepath.Join(t.TempDir(), "out")
	if err := unzipInto(bytes.NewReader(data), int64(len(data)), dest, 100); err != nil {
		t.Fatal(err)
	}
	st, err := os.Lstat(filepath.Join(dest, "ln"))
	if err != nil || !st.Mode().IsRegular() {
		t.Fatalf("ln: %v %v", st, err)
	}
	if b, _ := os.ReadFile(filepath.Join(dest, "ln")); string(b) != "/etc/passwd" {
		t.Fatalf("ln holds %q", b)
	}
	if !errors.Is(func() error {
		d := zipEntries(t, zipEntry{name: "../x", data: "x"})
		return unzipInto(bytes.NewReader(d), int64(len(d)), filepath.Join(t.TempDir(), "o"), 100)
	}(), ErrUnsafeZip) {
		t.Fatal("ErrUnsafeZip not matched")
	}
}
