//! Runs each component under a small bash launcher that kills it when the test binary goes away.
//!
//! The launcher's stdin is a pipe whose only writer is the test process. Nothing is ever written
//! to it; the launcher blocks reading it, and the read returns only at end of file, which the
//! kernel delivers when the test process closes the pipe: on a normal exit, a panic, or SIGKILL
//! alike (no destructor or signal handler of ours has to run). The launcher then SIGKILLs the
//! component: its state is a throw-away temp directory, so a graceful shutdown buys nothing. When
//! the component dies on its own the launcher exits too, with its status, so that the test side
//! can tell a crashed component from a slow one.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::{Mutex, PoisonError};

use anyhow::{Context, Result};

/// `bash -c LAUNCHER launcher BINARY ARGS...`.
///
/// fd 3 keeps the pipe for the watcher; the component itself gets /dev/null as stdin and no fd 3,
/// so that it never holds the pipe open itself. `read` is a bash builtin: killing the watcher
/// subshell leaves no process behind.
const LAUNCHER: &str = r#"
exec 3<&0 </dev/null
"$@" 3<&- &
child=$!
( read -r -u 3 _ || true; kill -KILL "$child" 2>/dev/null ) &
watcher=$!
exec 3<&-
wait "$child"
status=$?
kill "$watcher" 2>/dev/null
exit "$status"
"#;

/// Waits for the same end of file, then removes the control plane's temp directory. The
/// components are SIGKILLed at that same moment by their launchers, so a few retries cover a
/// write that lands while the directory is being removed.
const JANITOR: &str = r#"
read -r _ || true
for _ in 1 2 3 4 5 6 7 8 9 10; do
  rm -rf "$1" 2>/dev/null
  [ -e "$1" ] || exit 0
  sleep 0.5
done
"#;

/// A component running under its launcher.
pub struct Component {
    name: &'static str,
    launcher: Mutex<Child>,
    /// The write end of the launcher's stdin. Never written; dropping it (or the process ending)
    /// is what stops the component.
    _lifeline: ChildStdin,
    log: PathBuf,
}

impl Component {
    /// Starts `binary args` under the launcher, with stdout and stderr appended to
    /// `log_dir/<name>.log` and an environment of `env` only (no inherited variables: etcd, for
    /// one, reads every `ETCD_*` variable as a flag).
    pub fn spawn(
        name: &'static str,
        binary: &Path,
        args: &[String],
        env: &[(&str, &Path)],
        log_dir: &Path,
    ) -> Result<Self> {
        let log = log_dir.join(format!("{name}.log"));
        let out = open_log(&log)?;
        let err = out.try_clone().context("cloning the log file handle")?;
        let mut cmd = Command::new("bash");
        cmd.arg("-c")
            .arg(LAUNCHER)
            .arg(format!("payplane-launch-{name}"))
            .arg(binary)
            .args(args)
            .env_clear()
            .env("PATH", "/usr/local/bin:/usr/bin:/bin")
            .stdin(Stdio::piped())
            .stdout(out)
            .stderr(err);
        for (key, value) in env {
            cmd.env(key, value);
        }
        Self::from_command(name, cmd, log)
    }

    /// Starts the janitor that removes `dir` once the test process has gone.
    pub fn janitor(dir: &Path) -> Result<Self> {
        let mut cmd = Command::new("bash");
        cmd.arg("-c")
            .arg(JANITOR)
            .arg("payplane-janitor")
            .arg(dir)
            .env_clear()
            .env("PATH", "/usr/local/bin:/usr/bin:/bin")
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        Self::from_command("janitor", cmd, PathBuf::new())
    }

    fn from_command(name: &'static str, mut cmd: Command, log: PathBuf) -> Result<Self> {
        let mut child = cmd
            .spawn()
            .with_context(|| format!("starting {name} (is bash installed?)"))?;
        let lifeline = child
            .stdin
            .take()
            .context("the launcher's stdin pipe is missing")?;
        Ok(Self {
            name,
            launcher: Mutex::new(child),
            _lifeline: lifeline,
            log,
        })
    }

    pub fn name(&self) -> &'static str {
        self.name
    }

    /// `Some(status)` once the component (and so its launcher) has exited.
    pub fn exited(&self) -> Option<ExitStatus> {
        let mut child = self.launcher.lock().unwrap_or_else(PoisonError::into_inner);
        child.try_wait().ok().flatten()
    }

    /// The last `max_bytes` of the component's log, for error messages.
    pub fn log_tail(&self, max_bytes: u64) -> String {
        let Ok(mut file) = File::open(&self.log) else {
            return String::from("(no log)");
        };
        let len = file.metadata().map_or(0, |m| m.len());
        let start = len.saturating_sub(max_bytes);
        let mut buf = Vec::new();
        if file.seek(SeekFrom::Start(start)).is_err() || file.read_to_end(&mut buf).is_err() {
            return String::from("(log unreadable)");
        }
        String::from_utf8_lossy(&buf).into_owned()
    }

    /// A one-paragraph report for an error message: exit status if it died, then its log tail.
    pub fn report(&self) -> String {
        let state = match self.exited() {
            Some(status) => format!("exited ({status})"),
            None => String::from("running"),
        };
        format!(
            "--- {} {state}, log {} (last lines):\n{}",
            self.name,
            self.log.display(),
            self.log_tail(3000)
        )
    }
}

fn open_log(path: &Path) -> Result<File> {
    OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .with_context(|| format!("opening {}", path.display()))
}
