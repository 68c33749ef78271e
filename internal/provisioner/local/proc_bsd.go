//go:build unix && !linux

package local

import (
	"errors"
	"syscall"
)

// Without /proc, a process is known by its pid alone: start times are not
// recorded (0), so a pid reused while the daemon was down could be taken for
// a runner. Linux records /proc start times and has no such gap.

func processStartTime(pid int) (uint64, error) { return 0, nil }

func processAlive(pid int, _ uint64) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}

func processExists(pid int) (bool, uint64) { return processAlive(pid, 0), 0 }

func groupMembers(pgid int) []int { return nil }

func groupAlive(pgid int) bool {
	err := syscall.Kill(-pgid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}

func bootID() string { return "" }
