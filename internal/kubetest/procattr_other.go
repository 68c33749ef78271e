//go:build !linux

package kubetest

import "syscall"

// sysProcAttr: only Linux has Pdeathsig; elsewhere a test binary that dies
// without its cleanups leaves the children running.
func sysProcAttr() *syscall.SysProcAttr { return nil }
