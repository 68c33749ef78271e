//go:build unix

package local

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
)

// supported is nil where the local provisioner can run runners.
var supported error

// sysProcAttr starts the runner in a process group of its own (so Delete can
// signal everything it started) and, with run_as_user, as that user.
func sysProcAttr(owner *runAs) *syscall.SysProcAttr {
	a := &syscall.SysProcAttr{Setpgid: true}
	if owner != nil {
		a.Credential = &syscall.Credential{Uid: owner.uid, Gid: owner.gid, Groups: owner.groups}
	}
	return a
}

// signalGroup sends sig to every process in the group; an empty group is
// not an error.
func signalGroup(pgid int, sig syscall.Signal) error {
	if pgid <= 1 {
		return fmt.Errorf("refusing to signal process group %d", pgid)
	}
	err := syscall.Kill(-pgid, sig)
	if errors.Is(err, syscall.ESRCH) {
		return nil
	}
	return err
}

// reapStatus is what a non-blocking wait learned about a process.
type reapStatus int

const (
	reapRunning  reapStatus = iota // our child, still running
	reapExited                     // our child, exited and now reaped
	reapNotChild                   // not our child: watch it through procInfo
)

// reap waits for pid without blocking. A process adopted after a restart is
// not our child (reapNotChild), unless this process started it earlier.
func reap(pid int) (reapStatus, syscall.WaitStatus, error) {
	var ws syscall.WaitStatus
	for {
		got, err := syscall.Wait4(pid, &ws, syscall.WNOHANG, nil)
		switch {
		case errors.Is(err, syscall.EINTR):
			continue
		case errors.Is(err, syscall.ECHILD):
			return reapNotChild, ws, nil
		case err != nil:
			return reapRunning, ws, err
		case got == pid:
			return reapExited, ws, nil
		}
		return reapRunning, ws, nil
	}
}

// describeExit turns a wait status into (exit code, message); code -1 when
// a signal ended the process.
func describeExit(ws syscall.WaitStatus) (int, string) {
	switch {
	case ws.Exited():
		return ws.ExitStatus(), fmt.Sprintf("exit status %d", ws.ExitStatus())
	case ws.Signaled():
		return -1, "killed by signal " + ws.Signal().String()
	}
	return -1, "ended"
}

// lockWorkDir takes an exclusive lock on dir/.lock, so two provisioners
// never share a work directory (and its state file).
func lockWorkDir(dir string) (func(), error) {
	f, err := os.OpenFile(filepath.Join(dir, ".lock"), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("work_dir %s is in use by another local provisioner (each needs its own work_dir)", dir)
		}
		return nil, fmt.Errorf("lock work_dir %s: %w", dir, err)
	}
	return func() {
		_ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		_ = f.Close()
	}, nil
}

// setNice sets the niceness of the process group pgid.
func setNice(pgid, nice int) error {
	if err := syscall.Setpriority(syscall.PRIO_PGRP, pgid, nice); err != nil {
		return fmt.Errorf("setpriority of process group %d: %w", pgid, err)
	}
	return nil
}
