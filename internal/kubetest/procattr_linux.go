//go:build linux

package kubetest

import "syscall"

// sysProcAttr makes the kernel SIGKILL the children when the test binary
// dies without running its cleanups (go test -timeout panic, SIGKILL of the
// test binary): otherwise an orphaned kube-apiserver and etcd keep running
// and holding memory. Pdeathsig fires when the OS thread that started the
// child exits; the Go runtime only retires threads whose goroutine exits
// while locked with runtime.LockOSThread, which tests do not do around
// Start.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
