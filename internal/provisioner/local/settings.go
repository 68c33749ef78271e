package local

import (
	"fmt"
	"os"
	"os/user"
	"path/filepath"
	"regexp"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/runnerscaler/runnerscaler/internal/provisioner"
)

// Settings are provisioners.<name>.settings for type local.
type Settings struct {
	// WorkDir holds the state file and one directory per instance.
	// Default <state_dir>/local/<name>.
	WorkDir string `json:"work_dir"`
	// CacheDir holds the unpacked runner application. Default
	// <state_dir>/cache/runner; several local provisioners may share it.
	CacheDir string `json:"cache_dir"`
	// MaxInstances bounds the runner processes alive at once. Default 10.
	MaxInstances *int `json:"max_instances"`
	// RunAsUser, when set, is the user name (or numeric uid) the runner
	// processes run as. Switching users needs the daemon to run as root.
	RunAsUser string `json:"run_as_user"`
	// GracePeriod is how long Delete waits after SIGTERM before SIGKILL, as a
	// Go duration ("30s"). Default 30s.
	GracePeriod string `json:"grace_period"`
	// OS and Arch pick the runner application build, in GitHub's names
	// (linux, osx, win; x64, arm64, arm). Default: this host's.
	OS   string `json:"os"`
	Arch string `json:"arch"`
	// ExtraEnv is added to the runner's environment, which otherwise holds
	// only PATH, HOME and LANG (never the daemon's environment).
	ExtraEnv map[string]string `json:"extra_env"`
	// Nice is the scheduling niceness of the runner processes (0 to 19).
	// Runners on the daemon's own host compete with it for CPU; a positive
	// value keeps the daemon (webhooks, launches) responsive while jobs
	// run. Default 0.
	Nice int `json:"nice"`
}

// config is the validated form of Settings.
type config struct {
	workDir, cacheDir string
	maxInstances      int
	grace             time.Duration
	osName, arch      string
	extraEnv          map[string]string
	nice              int
	runAs             *runAs // nil: run as the daemon's user
}

// runAs is the user the runners run as.
type runAs struct {
	name     string
	uid, gid uint32
	groups   []uint32
	home     string
}

// Defaults.
const (
	defaultMaxInstances = 10
	defaultGracePeriod  = 30 * time.Second
)

var envNameRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// reservedEnvPrefix is how the runner application reads its configuration
// arguments; the provisioner sets those itself.
const reservedEnvPrefix = "ACTIONS_RUNNER_INPUT_"

// hostOS and hostArch name this host in GitHub's runner-download terms.
func hostOS() string {
	switch runtime.GOOS {
	case "darwin":
		return "osx"
	case "windows":
		return "win"
	}
	return "linux"
}

func hostArch() string {
	switch runtime.GOARCH {
	case "arm64":
		return "arm64"
	case "arm":
		return "arm"
	}
	return "x64"
}

// lookupUser is os/user.Lookup, falling back to LookupId for a numeric uid.
var lookupUser = func(name string) (*user.User, error) {
	u, err := user.Lookup(name)
	if err == nil {
		return u, nil
	}
	if _, perr := strconv.ParseUint(name, 10, 32); perr == nil {
		if u2, err2 := user.LookupId(name); err2 == nil {
			return u2, nil
		}
	}
	return nil, err
}

// daemonUID is the daemon's effective uid (-1 where there is none).
var daemonUID = os.Geteuid

// parseSettings decodes and validates settings, reporting every problem
// with its key path (provisioners.<name>.settings.<key>).
func parseSettings(settings map[string]any, env provisioner.Env) (config, error) {
	probs := provisioner.NewProblems(env.Name)
	var s Settings
	if !provisioner.DecodeSettings(settings, &s, probs) {
		return config{}, probs.Err()
	}
	c := config{
		workDir: s.WorkDir, cacheDir: s.CacheDir,
		maxInstances: defaultMaxInstances, grace: defaultGracePeriod,
		osName: hostOS(), arch: hostArch(),
	}
	if c.workDir == "" {
		if env.StateDir == "" {
			probs.Add("work_dir", "must be set when the daemon has no state directory")
		} else {
			c.workDir = filepath.Join(env.StateDir, "local", env.Name)
		}
	}
	if c.cacheDir == "" {
		if env.StateDir == "" {
			probs.Add("cache_dir", "must be set when the daemon has no state directory")
		} else {
			c.cacheDir = filepath.Join(env.StateDir, "cache", "runner")
		}
	}
	for _, d := range []struct {
		key string
		dir *string
	}{{"work_dir", &c.workDir}, {"cache_dir", &c.cacheDir}} {
		if *d.dir == "" {
			continue
		}
		if !filepath.IsAbs(*d.dir) && env.ConfigDir != "" {
			*d.dir = filepath.Join(env.ConfigDir, *d.dir) // relative to the config file
		}
		abs, err := filepath.Abs(*d.dir)
		if err != nil {
			probs.Add(d.key, "cannot be made absolute: %v", err)
			continue
		}
		*d.dir = abs
	}
	if c.workDir != "" && c.workDir == c.cacheDir {
		probs.Add("cache_dir", "must differ from work_dir")
	}
	if s.MaxInstances != nil {
		if *s.MaxInstances < 1 {
			probs.Add("max_instances", "must be at least 1, got %d", *s.MaxInstances)
		}
		c.maxInstances = *s.MaxInstances
	}
	if s.Nice < 0 || s.Nice > 19 {
		// Raising priority (negative) would need privileges and starve the
		// daemon instead.
		probs.Add("nice", "must be between 0 and 19, got %d", s.Nice)
	} else {
		c.nice = s.Nice
	}
	if s.GracePeriod != "" {
		d, err := time.ParseDuration(s.GracePeriod)
		switch {
		case err != nil:
			probs.Add("grace_period", "must be a duration like \"30s\" or \"2m\", got %q", s.GracePeriod)
		case d <= 0:
			probs.Add("grace_period", "must be positive, got %s", s.GracePeriod)
		default:
			c.grace = d
		}
	}
	if s.OS != "" {
		switch s.OS {
		case "linux", "osx", "win":
			c.osName = s.OS
		default:
			probs.Add("os", "must be linux, osx or win (GitHub's runner download names), got %q", s.OS)
		}
	}
	if s.Arch != "" {
		switch s.Arch {
		case "x64", "arm64", "arm":
			c.arch = s.Arch
		default:
			probs.Add("arch", "must be x64, arm64 or arm (GitHub's runner download names), got %q", s.Arch)
		}
	}
	if len(s.ExtraEnv) > 0 {
		keys := make([]string, 0, len(s.ExtraEnv))
		for k := range s.ExtraEnv {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		c.extraEnv = make(map[string]string, len(keys))
		for _, k := range keys {
			switch {
			case !envNameRE.MatchString(k):
				probs.Add("extra_env."+k, "is not a valid environment variable name (letters, digits and _, not starting with a digit)")
			case strings.HasPrefix(strings.ToUpper(k), reservedEnvPrefix):
				probs.Add("extra_env."+k, "%s* variables carry the runner's registration and are set by the provisioner", reservedEnvPrefix)
			case strings.ContainsRune(s.ExtraEnv[k], 0):
				probs.Add("extra_env."+k, "must not contain a NUL byte")
			default:
				c.extraEnv[k] = s.ExtraEnv[k]
			}
		}
	}
	if s.RunAsUser != "" {
		ra, msg := resolveRunAs(s.RunAsUser)
		if msg != "" {
			probs.Add("run_as_user", "%s", msg)
		}
		c.runAs = ra
	}
	if err := probs.Err(); err != nil {
		return config{}, err
	}
	return c, nil
}

// resolveRunAs looks the user up. When it is the daemon's own user no switch
// is needed (nil); another user needs the daemon to run as root, which can
// set any uid and gid through syscall.Credential.
func resolveRunAs(name string) (*runAs, string) {
	if runtime.GOOS == "windows" {
		return nil, "is not supported on Windows"
	}
	u, err := lookupUser(name)
	if err != nil {
		return nil, fmt.Sprintf("no such user %q: %v", name, err)
	}
	uid, err1 := strconv.ParseUint(u.Uid, 10, 32)
	gid, err2 := strconv.ParseUint(u.Gid, 10, 32)
	if err1 != nil || err2 != nil {
		return nil, fmt.Sprintf("user %q has a non-numeric uid or gid", name)
	}
	me := daemonUID()
	if me >= 0 && uint64(me) == uid {
		return nil, "" // already that user: nothing to switch
	}
	if me != 0 {
		return nil, fmt.Sprintf("running runners as %q (uid %d) needs the daemon to run as root; it runs as uid %d", name, uid, me)
	}
	ra := &runAs{name: u.Username, uid: uint32(uid), gid: uint32(gid), home: u.HomeDir}
	if gids, err := u.GroupIds(); err == nil {
		for _, g := range gids {
			if v, err := strconv.ParseUint(g, 10, 32); err == nil {
				ra.groups = append(ra.groups, uint32(v))
			}
		}
	}
	return ra, ""
}
