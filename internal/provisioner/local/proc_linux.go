package local

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// procStat is what /proc/<pid>/stat tells about a process.
type procStat struct {
	state     byte   // R, S, D, Z, ...
	pgrp      int    // process group
	startTime uint64 // clock ticks after boot: with the pid, names one process
}

// readProcStat reads /proc/<pid>/stat; os.ErrNotExist when there is no such
// process.
func readProcStat(pid int) (procStat, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return procStat{}, err
	}
	// The command name (field 2) is in parentheses and may hold anything, so
	// fields are counted from the last ')'.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return procStat{}, fmt.Errorf("/proc/%d/stat: unexpected format", pid)
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 20 {
		return procStat{}, fmt.Errorf("/proc/%d/stat: unexpected format", pid)
	}
	pgrp, err1 := strconv.Atoi(f[2])
	start, err2 := strconv.ParseUint(f[19], 10, 64)
	if err1 != nil || err2 != nil || len(f[0]) != 1 {
		return procStat{}, fmt.Errorf("/proc/%d/stat: unexpected format", pid)
	}
	return procStat{state: f[0][0], pgrp: pgrp, startTime: start}, nil
}

// processStartTime returns the start time of pid (clock ticks after boot).
func processStartTime(pid int) (uint64, error) {
	st, err := readProcStat(pid)
	if err != nil {
		return 0, err
	}
	return st.startTime, nil
}

// processAlive reports whether pid is a live (not zombie) process that
// started at startTime (0: any start time).
func processAlive(pid int, startTime uint64) bool {
	st, err := readProcStat(pid)
	if err != nil || st.state == 'Z' || st.state == 'X' {
		return false
	}
	return startTime == 0 || st.startTime == startTime
}

// processExists reports whether any process (zombies included) has pid, and
// its start time.
func processExists(pid int) (bool, uint64) {
	st, err := readProcStat(pid)
	if err != nil {
		return false, 0
	}
	return true, st.startTime
}

// groupMembers lists the live (not zombie) processes of a process group.
func groupMembers(pgid int) []int {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	var out []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		st, err := readProcStat(pid)
		if err != nil || st.pgrp != pgid || st.state == 'Z' || st.state == 'X' {
			continue
		}
		out = append(out, pid)
	}
	return out
}

// groupAlive reports whether the group has a live member.
func groupAlive(pgid int) bool { return len(groupMembers(pgid)) > 0 }

// bootID names this boot, so pids and start times recorded before a reboot
// are never taken for live processes.
func bootID() string {
	b, err := os.ReadFile("/proc/sys/kernel/random/boot_id")
	if errors.Is(err, os.ErrNotExist) || err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}
