//! Running programs: every command is echoed, and a failure says which.

use anyhow::{bail, Context, Result};
use std::path::Path;
use std::process::{Command, Stdio};

/// Runs `program args…` in `dir`, streaming its output; fails on a non-zero exit.
pub fn run(dir: &Path, program: &str, args: &[&str], envs: &[(&str, &str)]) -> Result<()> {
    eprintln!("$ {program} {}", args.join(" "));
    let status = Command::new(program)
        .args(args)
        .current_dir(dir)
        .envs(envs.iter().copied())
        .status()
        .with_context(|| format!("could not start {program}"))?;
    if !status.success() {
        bail!("`{program} {}` failed ({status})", args.join(" "));
    }
    Ok(())
}

/// The first line `program args…` prints, or `None` when it cannot run.
pub fn output_line(program: &str, args: &[&str]) -> Option<String> {
    let out = Command::new(program).args(args).stderr(Stdio::null()).output().ok()?;
    if !out.status.success() {
        return None;
    }
    String::from_utf8_lossy(&out.stdout).lines().next().map(|l| l.trim().to_string())
}

/// Whether `program` is on the PATH.
pub fn has(program: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {program}")])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

/// A program running in the background, stopped (stdin closed, then killed)
/// when dropped.
pub struct Background {
    child: std::process::Child,
    /// The value of the line it announced itself with.
    pub announced: String,
}

impl Background {
    /// Starts `program args…` in `dir` and waits until it prints a line
    /// starting with `prefix` (e.g. `CALLCARD_TEST_SERVER=`); the rest of that
    /// line is [`Background::announced`]. Its stdin stays open: a program
    /// that stops when stdin closes stops with us, even if we are killed.
    pub fn start(dir: &Path, program: &str, args: &[&str], envs: &[(&str, &str)], prefix: &str) -> Result<Background> {
        use std::io::BufRead;
        eprintln!("$ {program} {} &", args.join(" "));
        let mut child = Command::new(program)
            .args(args)
            .current_dir(dir)
            .envs(envs.iter().copied())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .with_context(|| format!("could not start {program}"))?;
        let stdout = child.stdout.take().context("no stdout")?;
        let mut lines = std::io::BufReader::new(stdout).lines();
        let announced = loop {
            match lines.next() {
                Some(Ok(line)) => {
                    if let Some(rest) = line.trim().strip_prefix(prefix) {
                        break rest.to_string();
                    }
                    println!("{line}");
                }
                _ => {
                    let _ = child.kill();
                    let _ = child.wait();
                    bail!("`{program} {}` stopped before printing {prefix}…", args.join(" "));
                }
            }
        };
        // Keep draining its output so it never blocks on a full pipe.
        std::thread::spawn(move || lines.map_while(Result::ok).for_each(|l| println!("{l}")));
        Ok(Background { child, announced })
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        // Closing stdin asks it to stop; give it a moment, then make sure.
        drop(self.child.stdin.take());
        for _ in 0..50 {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_background_program_announces_itself_and_stops_with_its_stdin() {
        let dir = std::env::temp_dir();
        let script = "echo starting; echo ANSWER=http://127.0.0.1:1; cat >/dev/null; echo bye";
        let started = std::time::Instant::now();
        let program = Background::start(&dir, "sh", &["-c", script], &[], "ANSWER=").unwrap();
        assert_eq!(program.announced, "http://127.0.0.1:1");
        drop(program);
        assert!(started.elapsed() < std::time::Duration::from_secs(4), "stopped by closing stdin, not killed");
        assert!(Background::start(&dir, "sh", &["-c", "echo nothing"], &[], "ANSWER=").is_err());
    }
}
