//go:build !unix

package external

import "os/exec"

// ownProcessGroup: without Unix process groups only the plugin itself is
// killed when its context is cancelled (exec.CommandContext's default).
func ownProcessGroup(*exec.Cmd) {}
