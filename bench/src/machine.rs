//! The machine the figures were taken on, and processes' memory, from `/proc`.

use std::fmt;

/// `VmRSS` of a `/proc/PID/status` text, in KiB.
pub fn parse_rss_kib(status: &str) -> Option<u64> {
    status.lines().find_map(|line| {
        let rest = line.strip_prefix("VmRSS:")?;
        let mut parts = rest.split_whitespace();
        let value: u64 = parts.next()?.parse().ok()?;
        match parts.next() {
            Some("kB") | None => Some(value),
            Some("mB") | Some("MB") => Some(value * 1024),
            _ => None,
        }
    })
}

/// The resident memory of process `pid` in KiB.
pub fn rss_kib(pid: u32) -> Option<u64> {
    parse_rss_kib(&std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?)
}

/// The whole machine's CPU time from the `cpu` line of a `/proc/stat`
/// text, in clock ticks: (busy, all). Busy is everything but idle and
/// I/O wait.
pub fn parse_cpu_ticks(stat: &str) -> Option<(u64, u64)> {
    let line = stat.lines().find(|l| l.starts_with("cpu "))?;
    let ticks: Vec<u64> = line.split_whitespace().skip(1).map(|t| t.parse().ok()).collect::<Option<_>>()?;
    let all: u64 = ticks.iter().take(8).sum();
    let idle = ticks.get(3)? + ticks.get(4)?;
    Some((all - idle, all))
}

/// The machine's CPU time so far (see [`parse_cpu_ticks`]).
pub fn cpu_ticks() -> Option<(u64, u64)> {
    parse_cpu_ticks(&std::fs::read_to_string("/proc/stat").ok()?)
}

/// Cores busy on average between two [`cpu_ticks`] readings, on a machine
/// of `cores` cores.
pub fn busy_cores(before: (u64, u64), after: (u64, u64), cores: usize) -> f64 {
    let (busy, all) = (after.0.saturating_sub(before.0), after.1.saturating_sub(before.1));
    if all == 0 {
        return 0.0;
    }
    busy as f64 / all as f64 * cores as f64
}

/// The first `model name` of a `/proc/cpuinfo` text.
pub fn parse_cpu_model(cpuinfo: &str) -> Option<String> {
    cpuinfo.lines().find_map(|l| {
        let (key, value) = l.split_once(':')?;
        (key.trim() == "model name").then(|| value.trim().to_string())
    })
}

/// `MemTotal` of a `/proc/meminfo` text, in KiB.
pub fn parse_mem_total_kib(meminfo: &str) -> Option<u64> {
    meminfo.lines().find_map(|l| l.strip_prefix("MemTotal:")?.split_whitespace().next()?.parse().ok())
}

/// What the results were measured on.
#[derive(Debug, Clone, Default)]
pub struct Machine {
    pub cpu: String,
    pub cores: usize,
    pub mem_gib: f64,
    pub kernel: String,
    /// The 1-minute load average when the run started (others' compiles show here).
    pub load_at_start: String,
}

impl Machine {
    pub fn read() -> Machine {
        let read = |p: &str| std::fs::read_to_string(p).unwrap_or_default();
        Machine {
            cpu: parse_cpu_model(&read("/proc/cpuinfo")).unwrap_or_else(|| "unknown".into()),
            cores: std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
            mem_gib: parse_mem_total_kib(&read("/proc/meminfo")).unwrap_or(0) as f64 / (1024.0 * 1024.0),
            kernel: read("/proc/sys/kernel/osrelease").trim().to_string(),
            load_at_start: read("/proc/loadavg").split_whitespace().take(3).collect::<Vec<_>>().join(" "),
        }
    }
}

impl fmt::Display for Machine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}, {} cores, {:.1} GiB RAM, Linux {}, load average at start {}",
            self.cpu, self.cores, self.mem_gib, self.kernel, self.load_at_start
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_rss_from_proc_status() {
        let status = "Name:\tcallcard-backend\nVmPeak:\t  900000 kB\nVmRSS:\t  123456 kB\nRssAnon:\t 1000 kB\n";
        assert_eq!(parse_rss_kib(status), Some(123_456));
        assert_eq!(parse_rss_kib("Name: x\n"), None);
        assert_eq!(parse_rss_kib("VmRSS: lots kB\n"), None);
    }

    #[test]
    fn reads_cpu_time() {
        let stat = "cpu  100 5 50 800 40 3 2 0 0 0\ncpu0 50 2 25 400 20 1 1 0 0 0\n";
        assert_eq!(parse_cpu_ticks(stat), Some((160, 1000)));
        assert_eq!(parse_cpu_ticks("intr 1 2\n"), None);
        assert!((busy_cores((160, 1000), (260, 1200), 2) - 1.0).abs() < 1e-9);
    }

    #[test]
    fn reads_cpu_and_memory() {
        assert_eq!(
            parse_cpu_model("processor\t: 0\nmodel name\t: AMD EPYC 7B13\nflags\t: x\n").as_deref(),
            Some("AMD EPYC 7B13")
        );
        assert_eq!(parse_mem_total_kib("MemTotal:       24576000 kB\nMemFree: 1 kB\n"), Some(24_576_000));
        // The live machine at least has a kernel and a core.
        let m = Machine::read();
        assert!(m.cores >= 1);
        assert!(m.to_string().contains("cores"));
    }
}
