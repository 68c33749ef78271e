package local

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/runnerscaler/runnerscaler/internal/provisioner"
)

// Timing of the runner application cache.
const (
	// appCheckInterval is how long the downloads list is trusted before it is
	// asked again whether a new runner version is out.
	appCheckInterval = time.Hour
	// appInstallTimeout bounds one download and unpack.
	appInstallTimeout = 15 * time.Minute
	// maxDownloadBytes bounds a runner application download.
	maxDownloadBytes = 2 << 30
)

var (
	sha256RE   = regexp.MustCompile(`^[0-9a-f]{64}$`)
	appKeyRE   = regexp.MustCompile(`^[a-z0-9]+-[a-z0-9]+-[0-9a-f]{16}$`)
	filenameRE = regexp.MustCompile(`^[A-Za-z0-9._-]+\.(tar\.gz|tgz|zip)$`)
)

// runnerApp is an unpacked runner application in the cache.
type runnerApp struct {
	filename string
	dir      string // cache_dir/<os>-<arch>-<sha256 prefix>
	checked  time.Time
}

// appFlight is one install in progress; concurrent Creates wait for it.
type appFlight struct {
	done chan struct{}
	app  *runnerApp
	err  error
}

// runnerApplication returns the unpacked runner application, installing it
// on first use or when GitHub lists a new build. Concurrent callers share a
// single install, which runs under the provisioner's own context (so a
// caller giving up does not cancel it for the others) and ends on Close.
func (p *Provisioner) runnerApplication(ctx context.Context) (*runnerApp, error) {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil, provisioner.NotCreated(ErrClosed)
	}
	if a := p.app; a != nil && p.now().Sub(a.checked) < appCheckInterval {
		p.mu.Unlock()
		return a, nil
	}
	f := p.flight
	if f == nil {
		f = &appFlight{done: make(chan struct{})}
		p.flight = f
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			ictx, cancel := context.WithTimeout(p.ctx, appInstallTimeout)
			defer cancel()
			app, err := p.installApp(ictx)
			p.mu.Lock()
			f.app, f.err = app, err
			if err == nil {
				p.app = app
			}
			p.flight = nil
			p.mu.Unlock()
			close(f.done)
		}()
	}
	p.mu.Unlock()
	select {
	case <-f.done:
		return f.app, f.err
	case <-ctx.Done():
		return nil, provisioner.NotCreated(fmt.Errorf("waiting for the runner application: %w", ctx.Err()))
	}
}

// forgetApp drops app from memory so the next Create looks for it again.
func (p *Provisioner) forgetApp(app *runnerApp) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.app == app {
		p.app = nil
	}
}

// installApp finds the build for this host, and downloads, verifies and
// unpacks it unless the cache already holds it.
func (p *Provisioner) installApp(ctx context.Context) (*runnerApp, error) {
	p.mu.Lock()
	prev := p.app
	p.mu.Unlock()
	apps, err := p.downloads.RunnerApplications(ctx)
	if err != nil {
		if prev != nil {
			// Keep using what we have; ask again on the next Create.
			p.log.Warn("cannot list runner applications; using the cached one", zap.String("file", prev.filename), zap.Error(err))
			return prev, nil
		}
		return nil, provisioner.NotCreated(fmt.Errorf("list runner applications: %w", err))
	}
	var pick *provisioner.RunnerApplication
	var offered []string
	for i, a := range apps {
		offered = append(offered, a.OS+"-"+a.Architecture)
		if a.OS == p.cfg.osName && a.Architecture == p.cfg.arch {
			pick = &apps[i]
			break
		}
	}
	if pick == nil {
		return nil, provisioner.Permanent(provisioner.NotCreated(fmt.Errorf(
			"no runner application for %s-%s (offered: %s); set os and arch in the settings",
			p.cfg.osName, p.cfg.arch, strings.Join(offered, ", "))))
	}
	want := strings.ToLower(pick.SHA256)
	if !sha256RE.MatchString(want) {
		return nil, provisioner.Permanent(provisioner.NotCreated(fmt.Errorf(
			"runner application %s: the downloads list gives no valid sha256 checksum (%q)", pick.Filename, pick.SHA256)))
	}
	if !filenameRE.MatchString(pick.Filename) {
		return nil, provisioner.Permanent(provisioner.NotCreated(fmt.Errorf(
			"runner application file name %q: want a plain .tar.gz or .zip name", pick.Filename)))
	}
	key := fmt.Sprintf("%s-%s-%s", p.cfg.osName, p.cfg.arch, want[:16])
	app := &runnerApp{filename: pick.Filename, dir: filepath.Join(p.cfg.cacheDir, key), checked: p.now()}
	if st, err := os.Stat(app.dir); err == nil && st.IsDir() {
		return app, nil // unpacked before (perhaps by an earlier daemon)
	}
	if err := os.MkdirAll(p.cfg.cacheDir, 0o755); err != nil {
		return nil, provisioner.NotCreated(fmt.Errorf("runner application cache: %w", err))
	}
	start := time.Now()
	archive, err := p.download(ctx, pick, want)
	if err != nil {
		return nil, err
	}
	defer os.Remove(archive) // the unpacked copy is what the cache keeps
	tmp, err := os.MkdirTemp(p.cfg.cacheDir, "."+key+".*.unpack")
	if err != nil {
		return nil, provisioner.NotCreated(fmt.Errorf("runner application cache: %w", err))
	}
	if err := extractArchive(archive, tmp); err != nil {
		_ = os.RemoveAll(tmp)
		err = fmt.Errorf("unpack runner application %s: %w", pick.Filename, err)
		if errors.Is(err, errUnsafeArchive) {
			err = provisioner.Permanent(err)
		}
		return nil, provisioner.NotCreated(err)
	}
	if err := os.Chmod(tmp, 0o755); err != nil {
		_ = os.RemoveAll(tmp)
		return nil, provisioner.NotCreated(err)
	}
	if err := os.Rename(tmp, app.dir); err != nil {
		_ = os.RemoveAll(tmp)
		// Another daemon sharing the cache may have finished first.
		if st, serr := os.Stat(app.dir); serr != nil || !st.IsDir() {
			return nil, provisioner.NotCreated(fmt.Errorf("runner application cache: %w", err))
		}
	}
	p.log.Info("runner application installed", zap.String("file", pick.Filename),
		zap.String("dir", app.dir), zap.Duration("took", time.Since(start)))
	p.pruneCache(key)
	return app, nil
}

// download fetches the archive to a temporary file in the cache, verifies
// its checksum and renames it into place. A mismatch removes the file.
func (p *Provisioner) download(ctx context.Context, app *provisioner.RunnerApplication, want string) (string, error) {
	fail := func(err error) (string, error) {
		return "", provisioner.NotCreated(fmt.Errorf("download runner application %s: %w", app.Filename, err))
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, app.DownloadURL, nil)
	if err != nil {
		return "", provisioner.Permanent(provisioner.NotCreated(fmt.Errorf("runner application %s: download URL: %w", app.Filename, err)))
	}
	resp, err := p.httpClient.Do(req)
	if err != nil {
		return fail(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fail(fmt.Errorf("%s answered %s", req.URL.Redacted(), resp.Status))
	}
	f, err := os.CreateTemp(p.cfg.cacheDir, "."+app.Filename+".*.download")
	if err != nil {
		return fail(err)
	}
	tmp := f.Name()
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(f, h), io.LimitReader(resp.Body, maxDownloadBytes+1))
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil && n > maxDownloadBytes {
		err = fmt.Errorf("larger than %d bytes", int64(maxDownloadBytes))
	}
	if err != nil {
		_ = os.Remove(tmp)
		return fail(err)
	}
	got := hex.EncodeToString(h.Sum(nil))
	if got != want {
		rmErr := os.Remove(tmp)
		msg := fmt.Sprintf("runner application %s failed verification: expected sha256 %s, got %s (%d bytes from %s); the download was removed",
			app.Filename, want, got, n, req.URL.Redacted())
		if rmErr != nil {
			msg += fmt.Sprintf(" (removing it failed: %v)", rmErr)
		}
		p.log.Error("runner application checksum mismatch", zap.String("file", app.Filename),
			zap.String("expected_sha256", want), zap.String("actual_sha256", got))
		return "", provisioner.Permanent(provisioner.NotCreated(errors.New(msg)))
	}
	final := filepath.Join(p.cfg.cacheDir, app.Filename)
	if err := os.Rename(tmp, final); err != nil {
		_ = os.Remove(tmp)
		return fail(err)
	}
	return final, nil
}

// pruneCache removes unpacked builds for this os and architecture other than
// the current one; instances made from them hold their own links or copies.
func (p *Provisioner) pruneCache(current string) {
	entries, err := os.ReadDir(p.cfg.cacheDir)
	if err != nil {
		return
	}
	prefix := p.cfg.osName + "-" + p.cfg.arch + "-"
	for _, e := range entries {
		name := e.Name()
		if !e.IsDir() || name == current || !strings.HasPrefix(name, prefix) || !appKeyRE.MatchString(name) {
			continue
		}
		if err := os.RemoveAll(filepath.Join(p.cfg.cacheDir, name)); err != nil {
			p.log.Warn("cannot remove an old runner application", zap.String("dir", name), zap.Error(err))
		} else {
			p.log.Info("old runner application removed", zap.String("dir", name))
		}
	}
}

// populate fills an instance directory from the unpacked application: hard
// links where the file system allows (the runner only adds files to its
// directory), copies otherwise. Directories are always new, so the runner
// can write into them; with run_as_user they are given to that user.
func populate(src, dst string, owner *runAs) error {
	linkOK := true
	return filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, p)
		if err != nil {
			return err
		}
		target := filepath.Join(dst, rel)
		info, err := d.Info()
		if err != nil {
			return err
		}
		switch {
		case d.IsDir():
			if rel != "." {
				if err := os.Mkdir(target, 0o755); err != nil {
					return err
				}
			}
			return chown(target, owner)
		case info.Mode()&fs.ModeSymlink != 0:
			link, err := os.Readlink(p)
			if err != nil {
				return err
			}
			return os.Symlink(link, target)
		case info.Mode().IsRegular():
			if linkOK {
				if err := os.Link(p, target); err == nil {
					return nil
				}
				linkOK = false // another file system, or links refused: copy from now on
			}
			return copyFile(p, target, info.Mode().Perm())
		}
		return nil // nothing else is unpacked into the cache
	})
}

func copyFile(src, dst string, perm fs.FileMode) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

func chown(path string, owner *runAs) error {
	if owner == nil {
		return nil
	}
	return os.Lchown(path, int(owner.uid), int(owner.gid))
}

// Warm installs the runner application now (listing GitHub's downloads and
// downloading the package unless the cache holds it), so the first Create
// calls do not wait for it. The daemon calls it at start; failures are
// retried by Create.
func (p *Provisioner) Warm(ctx context.Context) error {
	_, err := p.runnerApplication(ctx)
	return err
}
