package local

import (
	"archive/tar"
	"archive/zip"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"strings"
)

// maxUnpackedBytes bounds what an archive may expand to (the real runner
// application unpacks to a few hundred megabytes).
const maxUnpackedBytes = 4 << 30

// errUnsafeArchive marks an archive entry that would land outside the
// destination (an absolute name, "..", or a symbolic link leading out).
var errUnsafeArchive = errors.New("unsafe archive entry")

// extractArchive unpacks a .tar.gz (or .tgz) or .zip archive into dest, an
// existing empty directory. Every file operation goes through an os.Root on
// dest, so no entry can write outside it even through symbolic links made
// by earlier entries; names and link targets are also checked up front so
// the error says which entry is at fault.
func extractArchive(archive, dest string) error {
	root, err := os.OpenRoot(dest)
	if err != nil {
		return err
	}
	defer root.Close()
	name := strings.ToLower(archive)
	switch {
	case strings.HasSuffix(name, ".tar.gz"), strings.HasSuffix(name, ".tgz"):
		return extractTarGz(archive, root)
	case strings.HasSuffix(name, ".zip"):
		return extractZip(archive, root)
	}
	return fmt.Errorf("%s: unknown archive type (want .tar.gz or .zip)", path.Base(archive))
}

// cleanEntryName turns an archive entry name into a path relative to the
// destination, refusing any that could leave it.
func cleanEntryName(name string) (string, error) {
	n := strings.ReplaceAll(name, `\`, "/")
	if strings.HasPrefix(n, "/") || (len(n) >= 2 && n[1] == ':') {
		return "", fmt.Errorf("%w %q: absolute path", errUnsafeArchive, name)
	}
	for _, part := range strings.Split(n, "/") {
		if part == ".." {
			return "", fmt.Errorf("%w %q: leads out of the directory", errUnsafeArchive, name)
		}
	}
	n = path.Clean(n)
	if n == "." || n == "" {
		return "", nil // the directory itself
	}
	return n, nil
}

// checkLinkTarget refuses a symbolic link at name whose target is absolute
// or lexically outside the destination.
func checkLinkTarget(name, target string) error {
	t := strings.ReplaceAll(target, `\`, "/")
	if t == "" || strings.HasPrefix(t, "/") || (len(t) >= 2 && t[1] == ':') {
		return fmt.Errorf("%w %q: symbolic link to absolute path %q", errUnsafeArchive, name, target)
	}
	joined := path.Join(path.Dir(name), t)
	if joined == ".." || strings.HasPrefix(joined, "../") {
		return fmt.Errorf("%w %q: symbolic link %q leads out of the directory", errUnsafeArchive, name, target)
	}
	return nil
}

// fileMode keeps the permission bits an archive gives, without set-id bits
// and without write access for group and others.
func fileMode(m fs.FileMode) fs.FileMode {
	perm := m.Perm() &^ 0o022
	if perm&0o400 == 0 {
		perm |= 0o400 // the owner can always read
	}
	return perm
}

// unpacker writes entries into a root, counting bytes.
type unpacker struct {
	root    *os.Root
	written int64
}

func (u *unpacker) dir(name string) error {
	if name == "" {
		return nil
	}
	return u.root.MkdirAll(name, 0o755)
}

func (u *unpacker) parent(name string) error {
	if d := path.Dir(name); d != "." {
		return u.root.MkdirAll(d, 0o755)
	}
	return nil
}

func (u *unpacker) file(name string, mode fs.FileMode, r io.Reader) error {
	if err := u.parent(name); err != nil {
		return err
	}
	f, err := u.root.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, fileMode(mode))
	if err != nil {
		return err
	}
	n, err := io.Copy(f, io.LimitReader(r, maxUnpackedBytes-u.written+1))
	u.written += n
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil && u.written > maxUnpackedBytes {
		err = fmt.Errorf("archive unpacks to more than %d bytes", int64(maxUnpackedBytes))
	}
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	// OpenFile's permissions were masked by the umask; set them as given.
	return u.root.Chmod(name, fileMode(mode))
}

func (u *unpacker) symlink(name, target string) error {
	if err := checkLinkTarget(name, target); err != nil {
		return err
	}
	if err := u.parent(name); err != nil {
		return err
	}
	return u.root.Symlink(target, name)
}

func (u *unpacker) hardlink(name, target string) error {
	t, err := cleanEntryName(target)
	if err != nil || t == "" {
		return fmt.Errorf("%w %q: hard link to %q", errUnsafeArchive, name, target)
	}
	if err := u.parent(name); err != nil {
		return err
	}
	return u.root.Link(t, name)
}

func extractTarGz(archive string, root *os.Root) error {
	f, err := os.Open(archive)
	if err != nil {
		return err
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		return fmt.Errorf("%s: not gzip: %w", path.Base(archive), err)
	}
	defer zr.Close()
	tr := tar.NewReader(zr)
	u := &unpacker{root: root}
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("%s: %w", path.Base(archive), err)
		}
		name, err := cleanEntryName(h.Name)
		if err != nil {
			return err
		}
		switch h.Typeflag {
		case tar.TypeDir:
			err = u.dir(name)
		case tar.TypeReg:
			if name == "" {
				return fmt.Errorf("%w %q: a file with no name", errUnsafeArchive, h.Name)
			}
			err = u.file(name, h.FileInfo().Mode(), tr)
		case tar.TypeSymlink:
			err = u.symlink(name, h.Linkname)
		case tar.TypeLink:
			err = u.hardlink(name, h.Linkname)
		case tar.TypeXGlobalHeader:
			continue
		default:
			// Devices, FIFOs and the like have no place in the runner application.
			return fmt.Errorf("%w %q: unsupported entry type %q", errUnsafeArchive, h.Name, string(h.Typeflag))
		}
		if err != nil {
			return err
		}
	}
}

func extractZip(archive string, root *os.Root) error {
	zr, err := zip.OpenReader(archive)
	if err != nil {
		return fmt.Errorf("%s: %w", path.Base(archive), err)
	}
	defer zr.Close()
	u := &unpacker{root: root}
	for _, zf := range zr.File {
		name, err := cleanEntryName(zf.Name)
		if err != nil {
			return err
		}
		mode := zf.Mode()
		switch {
		case mode.IsDir():
			err = u.dir(name)
		case mode&fs.ModeSymlink != 0:
			err = func() error {
				rc, err := zf.Open()
				if err != nil {
					return err
				}
				defer rc.Close()
				target, err := io.ReadAll(io.LimitReader(rc, 4096))
				if err != nil {
					return err
				}
				return u.symlink(name, string(target))
			}()
		case mode.IsRegular():
			if name == "" {
				return fmt.Errorf("%w %q: a file with no name", errUnsafeArchive, zf.Name)
			}
			if mode.Perm() == 0 {
				mode |= 0o644 // zips made on Windows carry no Unix permissions
			}
			err = func() error {
				rc, err := zf.Open()
				if err != nil {
					return err
				}
				defer rc.Close()
				return u.file(name, mode, rc)
			}()
		default:
			return fmt.Errorf("%w %q: unsupported entry type", errUnsafeArchive, zf.Name)
		}
		if err != nil {
			return fmt.Errorf("%s: %w", path.Base(archive), err)
		}
	}
	return nil
}
