package main

import (
	"archive/zip"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/wormhole-go/wormhole/hints"
	"github.com/wormhole-go/wormhole/transfer"
	"github.com/wormhole-go/wormhole/transit"
)

// transitKeyPurpose is what Python derives the transit key from. It always
// uses the default appid, even with --appid (Python issue #339).
const transitKeyPurpose = defaultAppID + "/transit-key"

// fileSource is what `wh send PATH` sends: a file, or a zip of a directory.
type fileSource struct {
	offer *transfer.Offer
	f     *os.File
	size  int64
	temp  bool // f is a temporary zip to delete
}

func (fsrc *fileSource) Close() {
	name := fsrc.f.Name()
	fsrc.f.Close()
	if fsrc.temp {
		os.Remove(name)
	}
}

// buildFileOffer opens path and describes it, like Python's _build_offer.
func buildFileOffer(e *env, path string, ignoreUnsendable bool) (*fileSource, error) {
	basename := filepath.Base(filepath.Clean(path))
	target, err := filepath.EvalSymlinks(path)
	if err != nil {
		return nil, &transferError{fmt.Sprintf("Cannot send: no file/directory named '%s'", path)}
	}
	st, err := os.Stat(target)
	if err != nil {
		return nil, &transferError{fmt.Sprintf("Cannot send: no file/directory named '%s'", path)}
	}
	switch {
	case st.Mode().IsRegular():
		f, err := os.Open(target)
		if err != nil {
			return nil, &unsendableError{fmt.Sprintf("%s: %v", basename, unwrapPath(err))}
		}
		fmt.Fprintf(e.stderr, "Sending %s file named '%s'\n", naturalSize(st.Size()), basename)
		return &fileSource{
			offer: &transfer.Offer{File: &transfer.FileOffer{Filename: basename, Filesize: st.Size()}},
			f:     f, size: st.Size(),
		}, nil
	case st.IsDir():
		fmt.Fprintln(e.stderr, "Building zipfile..")
		return zipDirectory(e, target, basename, ignoreUnsendable)
	case st.Mode()&fs.ModeDevice != 0 && st.Mode()&fs.ModeCharDevice == 0:
		f, err := os.Open(target)
		if err != nil {
			return nil, &unsendableError{fmt.Sprintf("%s: %v", basename, unwrapPath(err))}
		}
		size, err := f.Seek(0, io.SeekEnd)
		if err == nil {
			_, err = f.Seek(0, io.SeekStart)
		}
		if err != nil {
			f.Close()
			return nil, err
		}
		fmt.Fprintf(e.stderr, "Sending %s block device named '%s'\n", naturalSize(size), basename)
		return &fileSource{
			offer: &transfer.Offer{File: &transfer.FileOffer{Filename: basename, Filesize: size}},
			f:     f, size: size,
		}, nil
	}
	return nil, &usageErr{fmt.Sprintf("'%s' is neither file nor directory", path)}
}

// unsendableError is Python's UnsendableFileError.
type unsendableError struct{ msg string }

func (e *unsendableError) Error() string { return e.msg }

// zipDirectory zips dir (deflated) into a temporary file.
func zipDirectory(e *env, dir, basename string, ignoreUnsendable bool) (*fileSource, error) {
	tmp, err := os.CreateTemp("", "wh-send-*.zip")
	if err != nil {
		return nil, err
	}
	fail := func(err error) (*fileSource, error) {
		tmp.Close()
		os.Remove(tmp.Name())
		return nil, err
	}
	zw := zip.NewWriter(tmp)
	var numFiles, numBytes int64
	err = filepath.WalkDir(dir, func(p string, d fs.DirEntry, walkErr error) error {
		if walkErr != nil {
			if ignoreUnsendable && p != dir {
				fmt.Fprintf(e.stderr, "%s: %v (ignoring error)\n", d.Name(), walkErr)
				return nil
			}
			return &unsendableError{fmt.Sprintf("%s: %v", p, walkErr)}
		}
		if d.IsDir() {
			return nil
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		n, err := addZipFile(zw, p, filepath.ToSlash(rel))
		if err != nil {
			msg := fmt.Sprintf("%s: %v", d.Name(), unwrapPath(err))
			if ignoreUnsendable {
				fmt.Fprintf(e.stderr, "%s (ignoring error)\n", msg)
				return nil
			}
			return &unsendableError{msg}
		}
		numFiles++
		numBytes += n
		return nil
	})
	if err != nil {
		return fail(err)
	}
	if err := zw.Close(); err != nil {
		return fail(err)
	}
	size, err := tmp.Seek(0, io.SeekCurrent)
	if err != nil {
		return fail(err)
	}
	if _, err := tmp.Seek(0, io.SeekStart); err != nil {
		return fail(err)
	}
	fmt.Fprintf(e.stderr, "Sending directory (%s compressed) named '%s'\n", naturalSize(size), basename)
	return &fileSource{
		offer: &transfer.Offer{Directory: &transfer.DirectoryOffer{
			Mode: transfer.DirectoryMode, Dirname: basename, Zipsize: size, Numbytes: numBytes, Numfiles: numFiles,
		}},
		f: tmp, size: size, temp: true,
	}, nil
}

func unwrapPath(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// addZipFile adds one file (only regular files and symlinks to them) and
// returns its size.
func addZipFile(zw *zip.Writer, path, name string) (int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return 0, err
	}
	if !st.Mode().IsRegular() {
		return 0, fmt.Errorf("not a regular file")
	}
	h, err := zip.FileInfoHeader(st)
	if err != nil {
		return 0, err
	}
	h.Name = name
	h.Method = zip.Deflate
	w, err := zw.CreateHeader(h)
	if err != nil {
		return 0, err
	}
	return io.Copy(w, f)
}

// Records: wh sends the transit package's default, 16 KiB of plaintext
// per record, like Python. Bigger records (64 KiB, 256 KiB) measured no
// CPU gain on either side of wh<->wh, and 256 KiB ones more than doubled
// a Python 0.12 receiver's system time.

// transitFor builds the Transit for one side.
func transitFor(s *session, c commonOptions, sender bool) (*transit.Transit, error) {
	key, err := s.w.DeriveKey(transitKeyPurpose, transit.KeySize)
	if err != nil {
		return nil, err
	}
	relay, err := hints.ParseRelayLocation(s.g.transitHelper)
	if err != nil {
		return nil, &usageErr{fmt.Sprintf("bad --transit-helper %q: %v", s.g.transitHelper, err)}
	}
	o := transit.Options{
		IsSender:   sender,
		Key:        key,
		RelayHints: []hints.Hint{relay},
		NoListen:   c.noListen || !c.listen,
	}
	if !sender {
		o.Dial = speakSecondDialer(key) // see transitorder.go
	}
	return transit.New(o)
}

// transitMessage is our {"transit": …} for t.
func transitMessage(ctx context.Context, t *transit.Transit) (*transfer.Transit, error) {
	local, err := t.LocalHints(ctx)
	if err != nil {
		return nil, err
	}
	raw, err := hints.MarshalHints(local)
	if err != nil {
		return nil, err
	}
	var tm transfer.Transit
	b := fmt.Sprintf(`{"abilities-v1": %s, "hints-v1": %s}`, transit.Abilities(), raw)
	if err := json.Unmarshal([]byte(b), &tm); err != nil {
		return nil, err
	}
	return &tm, nil
}

// peerHints converts the peer's transit hints for the transit package.
func peerHints(tm *transfer.Transit) []hints.Hint {
	var out []hints.Hint
	for _, h := range tm.Hints { // one by one: a hint the transit package refuses is skipped
		b, err := json.Marshal([]transfer.Hint{h})
		if err != nil {
			continue
		}
		if hs, err := hints.ParseHints(b); err == nil {
			out = append(out, hs...)
		}
	}
	return out
}

// sendFile runs the sender's side of a file or directory transfer after
// the verifier was checked.
func sendFile(ctx context.Context, s *session, c commonOptions, src *fileSource) error {
	e := s.e
	t, err := transitFor(s, c, true)
	if err != nil {
		return err
	}
	defer t.Close()
	tm, err := transitMessage(ctx, t)
	if err != nil {
		return err
	}
	if err := transfer.SendTransit(ctx, s.w, tm); err != nil {
		return err
	}
	if err := transfer.SendOffer(ctx, s.w, src.offer); err != nil {
		return err
	}
	ans, err := transfer.AwaitAnswer(ctx, s.w, func(peer *transfer.Transit) error {
		t.AddPeerHints(peerHints(peer))
		return nil
	})
	if err != nil {
		return err
	}
	if ans.FileAck != "ok" {
		return &transferError{fmt.Sprintf("ambiguous response from remote, transfer abandoned: message_ack=%q file_ack=%q", ans.MessageAck, ans.FileAck)}
	}
	conn, err := t.Connect(ctx)
	if err != nil {
		return &transferError{fmt.Sprintf("could not connect to the peer: %v", err)}
	}
	defer conn.Close()
	stopOnCancel := context.AfterFunc(ctx, func() { conn.Close() })
	defer stopOnCancel()
	s.mark("transit connected")
	fmt.Fprintf(e.stderr, "Sending (%s)..\n", conn.Candidate())
	h := sha256.New()
	p := newProgress(e.stderr, e.stderrTTY, src.size, c.hideProgress)
	if src.size > 0 {
		// exactly the size offered, even if the file changes meanwhile
		n, err := pipeCopy(conn, src.f, src.size, h, p, nil)
		p.finish()
		if err != nil {
			return &transferError{fmt.Sprintf("sending failed after %d bytes: %v", n, err)}
		}
	}
	fmt.Fprintln(e.stderr, "File sent.. waiting for confirmation")
	rec, err := conn.ReceiveRecord()
	if err != nil {
		return &transferError{fmt.Sprintf("no confirmation from the receiver: %v", err)}
	}
	var ack transfer.TransitAck
	if err := json.Unmarshal(rec, &ack); err != nil || ack.Ack != "ok" {
		return &transferError{fmt.Sprintf("Transfer failed (remote says: %s)", rec)}
	}
	if ack.SHA256 != "" && !strings.EqualFold(ack.SHA256, hex.EncodeToString(h.Sum(nil))) {
		return &transferError{"Transfer failed (bad remote hash)"}
	}
	fmt.Fprintln(e.stderr, "Confirmation received. Transfer complete.")
	return nil
}

// receiveOptions are receive's file options.
type receiveOptions struct {
	commonOptions
	acceptFile bool
	outputFile string
	onlyText   bool
}

// respondError is an error the receiver reports to the sender.
type respondError struct{ response string }

func (r *respondError) Error() string { return r.response }

// receiveFile runs the receiver's side for a file or directory offer.
func receiveFile(ctx context.Context, s *session, o receiveOptions, offer *transfer.Offer, t *transit.Transit) error {
	e := s.e
	var (
		name     string
		xfersize int64
		need     int64
		dir      = offer.Directory != nil
	)
	if dir {
		d := offer.Directory
		if !strings.HasPrefix(d.Mode, "zipfile") {
			fmt.Fprintf(e.stderr, "Error: unknown directory-transfer mode '%s'\n", d.Mode)
			return &respondError{transfer.ErrTextUnknownMode}
		}
		name, xfersize, need = d.Dirname, d.Zipsize, d.Numbytes
	} else {
		name, xfersize, need = offer.File.Filename, offer.File.Filesize, offer.File.Filesize
	}
	dest, err := decideDest(e, name, o)
	if err != nil {
		return err
	}
	if free, ok := freeSpace(filepath.Dir(dest)); ok && free < uint64(need) {
		what := "file"
		if dir {
			what = "directory"
		}
		fmt.Fprintf(e.stderr, "Error: insufficient free space (%dB) for %s (%dB)\n", free, what, need)
		return &respondError{transfer.ErrTextRejected}
	}
	if dir {
		fmt.Fprintf(e.stderr, "Receiving directory (%s) into: %s/\n", naturalSize(xfersize), filepath.Base(dest))
		fmt.Fprintf(e.stderr, "%d files, %s (uncompressed)\n", offer.Directory.Numfiles, naturalSize(offer.Directory.Numbytes))
	} else {
		fmt.Fprintf(e.stderr, "Receiving file (%s) into: %s\n", naturalSize(xfersize), filepath.Base(dest))
	}
	if !o.acceptFile {
		fmt.Fprint(e.stdout, "ok? (Y/n): ")
		ans, err := e.readLine()
		if err != nil {
			fmt.Fprintln(e.stdout)
			ans = "n" // stdin closed: no permission
		}
		if a := strings.ToLower(strings.TrimSpace(ans)); a != "" && !strings.HasPrefix(a, "y") {
			fmt.Fprintln(e.stderr, "transfer rejected")
			return &respondError{transfer.ErrTextRejected}
		}
	}
	if t == nil {
		return &transferError{"the sender offered a " + offer.Kind().String() + " but sent no transit hints"}
	}
	// Everything is created through an *os.Root on the destination's
	// directory: no path or link can lead the write elsewhere.
	parent, base := filepath.Split(dest)
	if base == "" {
		fmt.Fprintf(e.stderr, "Error: cannot write to '%s'\n", dest)
		return &respondError{transfer.ErrTextRejected}
	}
	root, err := os.OpenRoot(parent)
	if err != nil {
		return err
	}
	defer root.Close()
	if _, err := root.Lstat(base); err == nil { // only with --output-file
		if err := root.RemoveAll(base); err != nil {
			return err
		}
	}
	var tmp *os.File
	var tmpName string // in root, for the file case
	if dir {
		tmp, err = os.CreateTemp("", "wh-receive-*.zip")
	} else {
		tmp, tmpName, err = createTempIn(root, base)
	}
	if err != nil {
		return err
	}
	keep := false
	defer func() {
		tmp.Close()
		switch {
		case dir:
			os.Remove(tmp.Name())
		case !keep:
			root.Remove(tmpName)
		}
	}()
	if err := transfer.AcceptFile(ctx, s.w); err != nil {
		return err
	}
	conn, err := t.Connect(ctx)
	if err != nil {
		return &transferError{fmt.Sprintf("could not connect to the sender: %v", err)}
	}
	defer conn.Close()
	stopOnCancel := context.AfterFunc(ctx, func() { conn.Close() })
	defer stopOnCancel()
	s.mark("transit connected")
	fmt.Fprintf(e.stderr, "Receiving (%s)..\n", conn.Candidate())
	h := sha256.New()
	p := newProgress(e.stderr, e.stderrTTY, xfersize, o.hideProgress)
	n, err := pipeCopy(tmp, conn, xfersize, h, p, func() { conn.Close() })
	p.finish()
	if errors.Is(err, errShort) {
		fmt.Fprintf(e.stderr, "\nConnection dropped before full file received\ngot %d bytes, wanted %d\n", n, xfersize)
		return &transferError{"Connection dropped before full file received"}
	}
	if err != nil {
		return err
	}
	if dir {
		fmt.Fprintln(e.stderr, "Unpacking zipfile..")
		if err := root.Mkdir(base, 0o755); err != nil {
			return err
		}
		droot, err := root.OpenRoot(base)
		if err != nil {
			return err
		}
		err = unzipRoot(tmp, n, droot, offer.Directory.Numbytes)
		droot.Close()
		if err != nil {
			return &transferError{fmt.Sprintf("unpacking the directory: %v", err)}
		}
		fmt.Fprintf(e.stderr, "Received files written to %s/\n", filepath.Base(dest))
	} else {
		if err := tmp.Close(); err != nil {
			return err
		}
		if err := root.Rename(tmpName, base); err != nil {
			return err
		}
		keep = true
		fmt.Fprintf(e.stderr, "Received file written to %s\n", filepath.Base(dest))
	}
	ack, _ := json.Marshal(transfer.TransitAck{Ack: "ok", SHA256: hexSum(h)})
	if err := conn.SendRecord(ack); err != nil {
		return &transferError{fmt.Sprintf("sending the confirmation: %v", err)}
	}
	return nil
}

// createTempIn creates a new file ".BASE.NNNN.part" in root (O_EXCL: never
// an existing file or link).
func createTempIn(root *os.Root, base string) (*os.File, string, error) {
	var err error
	for i := 0; i < 100; i++ {
		var b [4]byte
		rand.Read(b[:])
		name := "." + base[:min(len(base), 200)] + "." + hex.EncodeToString(b[:]) + ".part"
		var f *os.File
		f, err = root.OpenFile(name, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o644)
		if err == nil {
			return f, name, nil
		}
		if !errors.Is(err, fs.ErrExist) {
			break
		}
	}
	return nil, "", err
}

func hexSum(h hash.Hash) string { return hex.EncodeToString(h.Sum(nil)) }

// decideDest picks the path to create, like Python's _decide_destname: the
// basename the sender suggested (or --output-file), never overwriting an
// existing file unless --output-file names it.
func decideDest(e *env, suggested string, o receiveOptions) (string, error) {
	name, err := transfer.SafeName(suggested)
	if err != nil {
		if o.outputFile == "" {
			fmt.Fprintf(e.stderr, "Error: the sender suggested an unusable name %q\n", suggested)
			return "", &respondError{transfer.ErrTextRejected}
		}
	}
	if o.outputFile != "" {
		name = o.outputFile
	}
	abs, err := filepath.Abs(name)
	if err != nil {
		return "", err
	}
	if _, err := os.Lstat(abs); err == nil {
		if o.outputFile == "" {
			fmt.Fprintf(e.stderr, "Error: refusing to overwrite existing '%s'\n", name)
			return "", &respondError{transfer.ErrTextRejected}
		}
		fmt.Fprintf(e.stderr, "Overwriting '%s'\n", name)
	}
	return abs, nil
}

func freeSpace(dir string) (uint64, bool) {
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		return 0, false
	}
	return st.Bavail * uint64(st.Bsize), true
}

// ErrUnsafeZip is matched by every refusal of a zip entry that would
// land outside the destination or replace a link.
var ErrUnsafeZip = errors.New("malicious zipfile")

// unzipInto extracts the zip in f (size bytes) into dest, which it
// creates. Every file is created through an *os.Root opened on dest, so no
// entry can write outside it: names with "..", absolute names and names
// through a symbolic link that leads out are refused, by the name check
// here and again by the kernel-checked Root. Symbolic-link entries are
// written as regular files holding the link text (as Python's zipfile
// does); no link is ever created. Extraction stops with an error once
// more than limit bytes were written in total.
func unzipInto(f io.ReaderAt, size int64, dest string, limit int64) error {
	if err := os.MkdirAll(dest, 0o755); err != nil {
		return err
	}
	root, err := os.OpenRoot(dest)
	if err != nil {
		return err
	}
	defer root.Close()
	return unzipRoot(f, size, root, limit)
}

// unzipRoot is unzipInto for a destination directory already opened.
func unzipRoot(f io.ReaderAt, size int64, root *os.Root, limit int64) error {
	dest := root.Name()
	zr, err := zip.NewReader(f, size)
	if err != nil {
		return err
	}
	var total int64
	for _, zf := range zr.File {
		name := filepath.FromSlash(strings.TrimSuffix(zf.Name, "/"))
		if !filepath.IsLocal(name) {
			return fmt.Errorf("%w, %q would be outside of %s", ErrUnsafeZip, zf.Name, dest)
		}
		if strings.HasSuffix(zf.Name, "/") || zf.FileInfo().IsDir() {
			if err := root.MkdirAll(name, 0o755); err != nil {
				return fmt.Errorf("%w: %q: %w", ErrUnsafeZip, zf.Name, err)
			}
			continue
		}
		if dir := filepath.Dir(name); dir != "." {
			if err := root.MkdirAll(dir, 0o755); err != nil {
				return fmt.Errorf("%w: %q: %w", ErrUnsafeZip, zf.Name, err)
			}
		}
		// never write through a link that is already there (Root would
		// follow one that stays inside dest)
		if st, err := root.Lstat(name); err == nil && !st.Mode().IsRegular() {
			return fmt.Errorf("%w: %q already exists and is not a regular file", ErrUnsafeZip, zf.Name)
		}
		perm := zf.Mode().Perm()
		if perm == 0 {
			perm = 0o644
		}
		rc, err := zf.Open()
		if err != nil {
			return err
		}
		w, err := root.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, perm|0o200)
		if err != nil {
			rc.Close()
			return fmt.Errorf("%w: %q: %w", ErrUnsafeZip, zf.Name, err)
		}
		n, err := io.Copy(w, io.LimitReader(rc, limit-total+1))
		rc.Close()
		if cerr := w.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return err
		}
		total += n
		if total > limit {
			return fmt.Errorf("the zip holds more than the %d bytes offered", limit)
		}
		if err := root.Chmod(name, perm); err != nil {
			return err
		}
	}
	return nil
}
