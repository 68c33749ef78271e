package sdnotify

import (
	"net"
	"path/filepath"
	"testing"
	"time"
)

// listen opens a unixgram socket in a fresh directory, standing in for
// systemd's notification socket.
func listen(t *testing.T) (*net.UnixConn, string) {
	t.Helper()
	addr := filepath.Join(t.TempDir(), "notify.sock")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: addr, Net: "unixgram"})
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn, addr
}

func receive(t *testing.T, conn *net.UnixConn) string {
	t.Helper()
	if err := conn.SetReadDeadline(time.Now().Add(5 * time.Second)); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 4096)
	n, err := conn.Read(buf)
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	return string(buf[:n])
}

func TestNotifySendsOneDatagramPerCall(t *testing.T) {
	t.Parallel()
	conn, addr := listen(t)
	for _, state := range []string{Ready, Stopping, "STATUS=draining 3 runners\nSTOPPING=1"} {
		sent, err := Notify(addr, state)
		if err != nil || !sent {
			t.Fatalf("Notify(%q) = %v, %v; want true, nil", state, sent, err)
		}
		if got := receive(t, conn); got != state {
			t.Errorf("received %q, want %q", got, state)
		}
	}
}

func TestNotifyAbstractSocket(t *testing.T) {
	t.Parallel()
	// systemd may hand out an abstract address ("@/org/freedesktop/...").
	name := "@runnerscaler-sdnotify-test-" + filepath.Base(t.TempDir())
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: name, Net: "unixgram"})
	if err != nil {
		t.Skipf("abstract unix sockets unavailable: %v", err)
	}
	defer conn.Close()
	if sent, err := Notify(name, Ready); err != nil || !sent {
		t.Fatalf("Notify = %v, %v", sent, err)
	}
	if got := receive(t, conn); got != Ready {
		t.Errorf("received %q, want %q", got, Ready)
	}
}

func TestNotifyWithoutSocketDoesNothing(t *testing.T) {
	t.Parallel()
	sent, err := Notify("", Ready)
	if sent || err != nil {
		t.Errorf("Notify(\"\") = %v, %v; want false, nil", sent, err)
	}
}

func TestNotifyErrors(t *testing.T) {
	t.Parallel()
	_, addr := listen(t)
	if _, err := Notify(addr, ""); err == nil {
		t.Error("empty state accepted")
	}
	if sent, err := Notify(filepath.Join(t.TempDir(), "absent.sock"), Ready); err == nil || sent {
		t.Errorf("Notify to a missing socket = %v, %v; want an error", sent, err)
	}
}
