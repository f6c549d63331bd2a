//! Where a process spends its CPU, by `perf` sampling: what the ingest
//! section prints under a missed target.
//!
//! Hardware counters are not available on this VM, but `perf record -e
//! cpu-clock` (a software timer) is, with kernel stacks; the report is read
//! with `--children`, so each line says how much of the time was spent in
//! that function and everything it called. Only the functions that name a
//! cost in words are kept (writing and syncing a log, answering
//! over TCP, switching threads, ...). Without `perf` (or the permission to
//! attach), the section says so instead.

use anyhow::{bail, Context, Result};
use std::process::Stdio;
use std::time::Duration;

/// The kernel and library functions worth naming, and what they mean here.
const MEANINGS: &[(&str, &str)] = &[
    ("__x64_sys_pwrite64", "writing a log (pwrite: SQLite's log, PostgreSQL's WAL)"),
    ("__x64_sys_fdatasync", "syncing a log (fdatasync: SQLite's log, PostgreSQL's WAL)"),
    ("__x64_sys_fsync", "syncing files (fsync)"),
    ("sock_write_iter", "sending HTTP answers (TCP writes)"),
    ("sock_read_iter", "reading HTTP requests (TCP reads)"),
    ("__x64_sys_recvfrom", "reading from sockets (recvfrom)"),
    ("finish_task_switch.isra.0", "switching threads (scheduler)"),
    ("__x64_sys_futex", "waking and waiting threads (futex)"),
    ("__x64_sys_epoll_wait", "waiting for sockets (epoll)"),
    ("handle_softirqs", "the loopback network stack (softirq)"),
    ("sqlite3VdbeExec", "SQLite executing statements"),
    ("XLogFlush", "PostgreSQL flushing its WAL at commit"),
    ("ExecInsertIndexTuples", "PostgreSQL inserting index entries"),
    ("ExecCheckIndexConstraints", "PostgreSQL checking ON CONFLICT keys"),
    ("heap_insert", "PostgreSQL inserting rows"),
    ("heap_update", "PostgreSQL updating rows"),
    ("standard_ExecutorStart", "PostgreSQL starting statements"),
    ("exec_bind_message", "PostgreSQL binding parameters"),
    ("pq_getbyte", "PostgreSQL waiting for the next statement"),
];

/// Samples the processes `pids` for `secs` after `delay`, and summarises
/// where their time went.
pub async fn sample(pids: &[u32], delay: Duration, secs: u64) -> Result<String> {
    let pids = pids.iter().map(u32::to_string).collect::<Vec<_>>().join(",");
    tokio::time::sleep(delay).await;
    let dir = tempfile::tempdir()?;
    let data = dir.path().join("perf.data");
    let status = tokio::process::Command::new("perf")
        .args(["record", "-F", "999", "-e", "cpu-clock", "-g", "-p", &pids, "-o"])
        .arg(&data)
        .args(["--", "sleep", &secs.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .status()
        .await
        .context("running perf (apt install linux-perf)")?;
    if !status.success() {
        bail!("perf record failed ({status}); attaching needs root or kernel.perf_event_paranoid ≤ 1");
    }
    let report = tokio::process::Command::new("perf")
        .args(["report", "--stdio", "--children", "--sort", "sym", "-i"])
        .arg(&data)
        .stderr(Stdio::null())
        .output()
        .await?;
    let text = String::from_utf8_lossy(&report.stdout);
    // cpu-clock counts nanoseconds of CPU time.
    let cpu_ns = text
        .lines()
        .find_map(|l| l.strip_prefix("# Event count (approx.): ")?.trim().parse::<f64>().ok())
        .context("perf report names no event count")?;
    let mut kernel = 0.0;
    let mut named = Vec::new();
    for line in text.lines() {
        let mut cols = line.split_whitespace();
        let (Some(children), Some(_self), Some(kind), Some(symbol)) =
            (cols.next(), cols.next(), cols.next(), cols.next())
        else {
            continue;
        };
        let Some(share) = children.strip_suffix('%').and_then(|p| p.parse::<f64>().ok()) else { continue };
        if kind == "[k]" && symbol == "do_syscall_64" {
            kernel = share;
        }
        if let Some((_, meaning)) = MEANINGS.iter().find(|(s, _)| *s == symbol) {
            named.push((share, *meaning));
        }
    }
    named.sort_by(|a, b| b.0.total_cmp(&a.0));
    let cores = cpu_ns / 1e9 / secs as f64;
    let parts: Vec<String> = named.iter().map(|(share, meaning)| format!("{meaning} {share:.1} %")).collect();
    Ok(format!(
        "{cores:.2} cores busy over {secs} s; in system calls {kernel:.1} % of that. By cost (each including what \
         it calls, so they overlap): {}.",
        parts.join(", ")
    ))
}
