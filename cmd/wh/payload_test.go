package main

import (
	"crypto/sha256"
	"encoding/hex"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
)

// payload is a file generated for the test (never committed) and its
// sha256.
type payload struct {
	path, name, sum string
	size            int64
}

// makePayload writes size pseudo-random bytes to dir/name and hashes them.
func makePayload(t testing.TB, dir, name string, size int64, seed uint64) payload {
	t.Helper()
	p := filepath.Join(dir, name)
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	rng := rand.NewChaCha8([32]byte{byte(seed), byte(seed >> 8)})
	buf := make([]byte, 1<<20)
	for left := size; left > 0; {
		n := min(left, int64(len(buf)))
		rng.Read(buf[:n])
		if _, err := f.Write(buf[:n]); err != nil {
			t.Fatal(err)
		}
		h.Write(buf[:n])
		left -= n
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	return payload{path: p, name: name, sum: hex.EncodeToString(h.Sum(nil)), size: size}
}

func fileSum(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// treeSums maps every regular file under root (slash path) to its sha256.
func treeSums(t testing.TB, root string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type().IsRegular() {
			rel, _ := filepath.Rel(root, p)
			if out[filepath.ToSlash(rel)], err = fileSum(p); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// checkFile checks the received file's sha256 and removes it.
func checkFile(t *testing.T, got string, want payload) {
	t.Helper()
	defer os.Remove(got)
	sum, err := fileSum(got)
	if err != nil || sum != want.sum {
		t.Fatalf("%s: sha256 %s (%v), want %s", got, sum, err, want.sum)
	}
	t.Logf("%s: %d bytes, sha256 %s: equal", filepath.Base(got), want.size, sum)
}

// checkDir compares the received tree with the sent one, file by file
// (sha256, no extra or missing file), and removes it.
func checkDir(t *testing.T, got string, want map[string]string) {
	t.Helper()
	defer os.RemoveAll(got)
	sums := treeSums(t, got)
	if len(sums) != len(want) {
		t.Fatalf("%s: %d files, want %d (%v)", got, len(sums), len(want), sums)
	}
	for name, sum := range want {
		if sums[name] != sum {
			t.Fatalf("%s/%s: sha256 %q, want %q", got, name, sums[name], sum)
		}
	}
}
