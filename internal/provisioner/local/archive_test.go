package local

import (
	"archive/tar"
	"archive/zip"
	"bytes"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
)

func TestExtractTarGz(t *testing.T) {
	dir := t.TempDir()
	archive := filepath.Join(dir, "app.tar.gz")
	data := makeTarGz(t,
		tarEntry{name: "./bin/", typ: tar.TypeDir},
		tarEntry{name: "./run.sh", body: "#!/bin/sh\n", mode: 0o4777},
		tarEntry{name: "bin/lib.so", body: "lib", mode: 0o644},
		tarEntry{name: "bin/current", typ: tar.TypeSymlink, link: "lib.so"},
		tarEntry{name: "bin/hard", typ: tar.TypeLink, link: "bin/lib.so"},
		tarEntry{name: "deep/er/file", body: "x", mode: 0o600},
	)
	if err := os.WriteFile(archive, data, 0o644); err != nil {
		t.Fatal(err)
	}
	dest := filepath.Join(dir, "out")
	if err := os.Mkdir(dest, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := extractArchive(archive, dest); err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(filepath.Join(dest, "run.sh"))
	if err != nil || st.Mode().Perm() != 0o755 || st.Mode()&fs.ModeSetuid != 0 {
		t.Errorf("run.sh: %v %v; want 0755 without setuid or world write", st.Mode(), err)
	}
	if b, err := os.ReadFile(filepath.Join(dest, "bin/current")); err != nil || string(b) != "lib" {
		t.Errorf("symlink: %q %v", b, err)
	}
	if b, err := os.ReadFile(filepath.Join(dest, "bin/hard")); err != nil || string(b) != "lib" {
		t.Errorf("hard link: %q %v", b, err)
	}
	if _, err := os.Stat(filepath.Join(dest, "deep/er/file")); err != nil {
		t.Errorf("nested file: %v", err)
	}
}

func TestExtractRefusesEscapes(t *testing.T) {
	tests := []struct {
		name    string
		entries []tarEntry
	}{
		{"dot-dot", []tarEntry{{name: "../evil", body: "x"}}},
		{"nested dot-dot", []tarEntry{{name: "bin/../../evil", body: "x"}}},
		{"absolute", []tarEntry{{name: "/tmp/evil", body: "x"}}},
		{"symlink to an absolute path", []tarEntry{{name: "l", typ: tar.TypeSymlink, link: "/etc"}}},
		{"symlink out", []tarEntry{{name: "bin/l", typ: tar.TypeSymlink, link: "../../x"}}},
		{"hard link out", []tarEntry{{name: "h", typ: tar.TypeLink, link: "../outside"}}},
		// Lexically inside, but x is "." so x/x/.. is the parent: os.Root
		// stops the write through it.
		{"write through a symlink chain", []tarEntry{
			{name: "x", typ: tar.TypeSymlink, link: "."},
			{name: "l", typ: tar.TypeSymlink, link: "x/x/.."},
			{name: "l/evil", body: "x"},
		}},
		{"device", []tarEntry{{name: "dev", typ: tar.TypeChar}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			base := t.TempDir()
			archive := filepath.Join(base, "app.tar.gz")
			if err := os.WriteFile(archive, makeTarGz(t, tc.entries...), 0o644); err != nil {
				t.Fatal(err)
			}
			dest := filepath.Join(base, "a", "out")
			if err := os.MkdirAll(dest, 0o755); err != nil {
				t.Fatal(err)
			}
			err := extractArchive(archive, dest)
			if err == nil {
				t.Fatal("extracted; want a refusal")
			}
			for _, p := range []string{"evil", "a/evil", "outside", "x"} {
				if _, serr := os.Lstat(filepath.Join(base, p)); serr == nil {
					t.Errorf("%s written outside the destination", p)
				}
			}
			if _, serr := os.Lstat("/tmp/evil"); serr == nil {
				t.Error("/tmp/evil written")
			}
			t.Logf("refused: %v", err)
		})
	}
}

func TestExtractZip(t *testing.T) {
	build := func(files map[string]string, symlink string) []byte {
		var buf bytes.Buffer
		zw := zip.NewWriter(&buf)
		for name, body := range files {
			h := &zip.FileHeader{Name: name, Method: zip.Deflate}
			h.SetMode(0o755)
			w, err := zw.CreateHeader(h)
			if err != nil {
				t.Fatal(err)
			}
			_, _ = w.Write([]byte(body))
		}
		if symlink != "" {
			h := &zip.FileHeader{Name: "link"}
			h.SetMode(fs.ModeSymlink | 0o777)
			w, _ := zw.CreateHeader(h)
			_, _ = w.Write([]byte(symlink))
		}
		if err := zw.Close(); err != nil {
			t.Fatal(err)
		}
		return buf.Bytes()
	}
	base := t.TempDir()
	good := filepath.Join(base, "good.zip")
	_ = os.WriteFile(good, build(map[string]string{"run.cmd": "@echo off", "bin/Runner.Listener.exe": "MZ"}, "bin/Runner.Listener.exe"), 0o644)
	dest := filepath.Join(base, "good")
	_ = os.Mkdir(dest, 0o755)
	if err := extractArchive(good, dest); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(filepath.Join(dest, "link")); err != nil || string(b) != "MZ" {
		t.Errorf("zip symlink: %q %v", b, err)
	}
	for name, body := range map[string]map[string]string{
		"traversal": {"../evil.cmd": "x"},
		"backslash": {`..\evil.cmd`: "x"},
		"drive":     {`C:\evil.cmd`: "x"},
	} {
		bad := filepath.Join(base, name+".zip")
		_ = os.WriteFile(bad, build(body, ""), 0o644)
		out := filepath.Join(base, name)
		_ = os.Mkdir(out, 0o755)
		if err := extractArchive(bad, out); !errors.Is(err, errUnsafeArchive) {
			t.Errorf("%s: %v, want errUnsafeArchive", name, err)
		}
	}
	bad := filepath.Join(base, "badlink.zip")
	_ = os.WriteFile(bad, build(nil, "/etc/passwd"), 0o644)
	out := filepath.Join(base, "badlink")
	_ = os.Mkdir(out, 0o755)
	if err := extractArchive(bad, out); !errors.Is(err, errUnsafeArchive) {
		t.Errorf("zip symlink to an absolute path: %v", err)
	}
	if _, err := os.Stat(filepath.Join(base, "evil.cmd")); err == nil {
		t.Error("evil.cmd written outside")
	}
}
