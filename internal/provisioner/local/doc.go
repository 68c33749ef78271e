// Package local is the "local" provisioner: GitHub Actions runners as
// processes on the daemon's own host.
//
// Relative work_dir and cache_dir are relative to the config file's
// directory (provisioner.Env.ConfigDir).
//
// # Runner application
//
// The runner application is found through the daemon's GitHub client (the
// downloads endpoint, provisioner.Env.Downloads): the build for this host's
// OS and architecture (or the os and arch settings) is downloaded once into
// cache_dir through a temporary file, its sha256_checksum verified (a
// mismatch removes the file and fails Create with a permanent error naming
// both checksums), and unpacked (.tar.gz, or .zip as GitHub ships for
// Windows) with every entry confined to the destination: absolute names,
// ".." and symbolic links leading out are refused. The unpacked copy is
// reused until the downloads list names a different build; the list is
// asked again at most hourly, and when it cannot be read the cached build is
// used. Concurrent Creates share one download.
//
// # Instances
//
// Each instance gets a fresh directory, work_dir/instances/<runner name>,
// filled from the unpacked application with hard links (copies across file
// systems); the runner only adds files to its directory. The runner's
// output goes to runner.log there. The process runs in a process group of
// its own, with an environment made only of PATH, HOME, LANG and extra_env:
// the daemon's environment, which holds its secrets, is never passed on.
//
//   - JIT registration runs ./run.sh with the JIT config in
//     ACTIONS_RUNNER_INPUT_JITCONFIG.
//   - Token registration runs ./config.sh --unattended --url --name --labels
//     --runnergroup --work _work [--ephemeral] --disableupdate and then
//     ./run.sh, through /bin/sh. The registration token is passed in
//     ACTIONS_RUNNER_INPUT_TOKEN, which the runner application reads in place
//     of --token, and unset before run.sh starts.
//
// No secret is ever in a process's arguments, a log line, an error or the
// state file.
//
// Create returns the instance running once its process has started. A
// goroutine per instance watches the process (polling, so that processes
// adopted after a restart, which are not the daemon's children, are watched
// the same way): exit status 0 makes the instance stopped, anything else
// failed, with the end of runner.log in LastError. Delete sends SIGTERM to
// the whole process group, SIGKILL after grace_period, waits for the group
// to be empty and removes the directory. Processes that leave the group
// (setsid) are out of its reach, as with any process-group kill.
//
// A spec whose pool names another OS or architecture than the runners this
// provisioner starts is refused (permanent, not created).
//
// max_instances bounds the runner processes alive at once (pending and
// running instances); a Create beyond it fails with ErrMaxInstances, marked
// NotCreated.
//
// # Restarts
//
// The instances are recorded in work_dir/instances.json (id, pool, runner
// name, daemon id, pid, process start time from /proc/<pid>/stat and boot id,
// directory, creation time, state); Create returns an instance once the file
// holds it. The file is replaced atomically (temporary file, fsync, rename)
// without holding up List and Get, and changes made while a write runs share
// the next one. Close stops the watching goroutines but not the runners,
// which outlive a daemon restart by design: New reads the file and adopts
// each live process of this daemon (same pid, same start time, same boot, so
// a reused pid is never mistaken for a runner) and cleans up after the dead
// ones, removing their directories. Records of other daemon ids are kept as
// they are and never listed or touched. The work_dir is locked while a
// provisioner uses it. The exit status of an adopted process cannot be known:
// when it ends the instance is stopped.
//
// # run_as_user
//
// With run_as_user, runners run as that user through syscall.Credential
// (uid, gid and supplementary groups); the instance directory and runner.log
// are given to the user, while the application files, hard-linked from the
// cache, stay the daemon's and read-only to the runner. Switching users
// needs the daemon to run as root; naming the daemon's own user switches
// nothing. Note that the real runner application refuses to run as root
// unless RUNNER_ALLOW_RUNASROOT=1 is set (through extra_env).
//
// The provisioner needs a Unix host; on Linux, process start times defeat
// pid reuse, elsewhere a pid alone identifies an adopted runner.
package local
