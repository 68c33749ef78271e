//go:build unix

package external

import (
	"errors"
	"os"
	"os/exec"
	"syscall"
)

// ownProcessGroup starts the plugin as the leader of a new process group and
// makes cancelling its context kill that whole group, so a plugin that
// overruns takes everything it started (in the group) down with it.
func ownProcessGroup(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error {
		err := syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		if errors.Is(err, syscall.ESRCH) {
			return os.ErrProcessDone
		}
		return err
	}
}
