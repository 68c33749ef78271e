//go:build !unix

package local

import (
	"errors"
	"syscall"
)

// supported: runners as local processes need process groups and signals.
var supported = errors.New("the local provisioner needs a Unix host (Linux or macOS): process groups and signals")

func sysProcAttr(*runAs) *syscall.SysProcAttr { return nil }

func signalGroup(int, syscall.Signal) error { return supported }

type reapStatus int

const (
	reapRunning reapStatus = iota
	reapExited
	reapNotChild
)

type waitStatus struct{}

func reap(int) (reapStatus, waitStatus, error) { return reapNotChild, waitStatus{}, supported }

func describeExit(waitStatus) (int, string) { return -1, "ended" }

func lockWorkDir(string) (func(), error) { return nil, supported }

func processStartTime(int) (uint64, error) { return 0, supported }

func processAlive(int, uint64) bool { return false }

func processExists(int) (bool, uint64) { return false, 0 }

func groupMembers(int) []int { return nil }

func groupAlive(int) bool { return false }

func bootID() string { return "" }

func setNice(int, int) error { return supported }
