// Package sdnotify tells systemd about the daemon's state: the sd_notify(3)
// protocol for a unit with Type=notify, without libsystemd or cgo.
//
// systemd passes the address of its notification socket in $NOTIFY_SOCKET:
// a file system path, or a name in Linux's abstract namespace written with a
// leading "@" (Go's net package maps "@" to the abstract namespace itself).
// Each notification is one datagram of newline-separated VAR=VALUE
// assignments. Outside systemd the variable is unset and Notify does nothing,
// so the call sites need no "am I under systemd?" test.
package sdnotify

import (
	"errors"
	"net"
)

// States understood by systemd, for Notify.
const (
	// Ready says start-up is finished: systemctl start returns, and units
	// ordered after this one start.
	Ready = "READY=1"
	// Stopping says shutdown has begun.
	Stopping = "STOPPING=1"
)

// Notify sends state (one or more "VAR=VALUE" lines, e.g. Ready) to the
// socket at addr, the value of $NOTIFY_SOCKET. It reports whether a
// notification was sent: with addr empty (not started by systemd, or by a
// unit that is not Type=notify) it sends nothing and returns false, nil.
// The caller reads NOTIFY_SOCKET from its environment map, so tests stay
// hermetic.
func Notify(addr, state string) (bool, error) {
	if addr == "" {
		return false, nil
	}
	if state == "" {
		return false, errors.New("sdnotify: empty state")
	}
	conn, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: addr, Net: "unixgram"})
	if err != nil {
		return false, err
	}
	defer conn.Close()
	if _, err := conn.Write([]byte(state)); err != nil {
		return false, err
	}
	return true, nil
}
