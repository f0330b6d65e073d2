package main

import (
	"archive/zip"
	"bytes"
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
	zf, err := os.Create(filepath.Join(base, "in.zip"))
	if err != nil {
		t.Fatal(err)
	}
	defer zf.Close()
	zf.Write(data)
	dest := filepath.Join(base, "out")
	err = unzipInto(zf, int64(len(data)), dest, limit)
	// nothing may appear next to dest except the input zip
	entries, _ := os.ReadDir(base)
	for _, e := range entries {
		if e.Name() != "in.zip" && e.Name() != "out" {
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
