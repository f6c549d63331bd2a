//! The results: one row per figure, beside its same-run baseline and target,
//! rendered as a plain-text table (terminal) and as `bench/RESULTS.md`.

use std::fmt::Write as _;

/// Whether a figure meets its target.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    Met,
    /// Missed, and by how much (e.g. `+12.3 ms (49 %) over`).
    Missed(String),
    /// Could not be measured in this run, and why.
    NotMeasured(String),
    /// A figure without a target (context for the others).
    Info,
}

impl Verdict {
    pub fn label(&self) -> String {
        match self {
            Verdict::Met => "met".into(),
            Verdict::Missed(by) => format!("MISSED by {by}"),
            Verdict::NotMeasured(why) => format!("not measured: {why}"),
            Verdict::Info => "—".into(),
        }
    }

    /// `figure` against an upper bound `limit` (same unit, named `unit`).
    pub fn at_most(figure: f64, limit: f64, unit: &str) -> Verdict {
        if figure <= limit {
            Verdict::Met
        } else {
            Verdict::Missed(format!("{} {unit} ({:.0} % over)", trim(figure - limit), 100.0 * (figure - limit) / limit))
        }
    }

    /// `figure` against a lower bound `limit`.
    pub fn at_least(figure: f64, limit: f64, unit: &str) -> Verdict {
        if figure >= limit {
            Verdict::Met
        } else {
            Verdict::Missed(format!(
                "{} {unit} ({:.0} % under)",
                trim(limit - figure),
                100.0 * (limit - figure) / limit
            ))
        }
    }
}

fn trim(v: f64) -> String {
    if v.abs() >= 100.0 || v.fract() == 0.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.2}")
    }
}

/// One figure.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    /// `1 call-pop` …: which benchmark.
    pub bench: String,
    pub measure: String,
    pub figure: String,
    /// The same-run baseline it is compared with.
    pub baseline: String,
    pub target: String,
    pub verdict: Verdict,
}

impl Row {
    pub fn new(bench: &str, measure: &str, figure: impl Into<String>, baseline: impl Into<String>) -> Row {
        Row {
            bench: bench.into(),
            measure: measure.into(),
            figure: figure.into(),
            baseline: baseline.into(),
            target: "—".into(),
            verdict: Verdict::Info,
        }
    }

    pub fn target(mut self, target: impl Into<String>, verdict: Verdict) -> Row {
        self.target = target.into();
        self.verdict = verdict;
        self
    }

    fn cells(&self) -> [String; 6] {
        [
            self.bench.clone(),
            self.measure.clone(),
            self.figure.clone(),
            self.baseline.clone(),
            self.target.clone(),
            self.verdict.label(),
        ]
    }
}

const HEADERS: [&str; 6] = ["#", "measure", "figure", "same-run baseline", "target", "verdict"];

/// A fixed-width table for the terminal.
pub fn text_table(rows: &[Row]) -> String {
    let all: Vec<[String; 6]> = rows.iter().map(Row::cells).collect();
    let mut widths = HEADERS.map(|h| h.chars().count());
    for cells in &all {
        for (w, c) in widths.iter_mut().zip(cells) {
            *w = (*w).max(c.chars().count());
        }
    }
    let line = |cells: &[String]| {
        let mut s = String::new();
        for (i, (c, w)) in cells.iter().zip(widths).enumerate() {
            if i > 0 {
                s.push_str(" | ");
            }
            s.push_str(c);
            s.push_str(&" ".repeat(w - c.chars().count()));
        }
        s.trim_end().to_string() + "\n"
    };
    let mut out = line(&HEADERS.map(String::from));
    out.push_str(&widths.iter().map(|w| "-".repeat(*w)).collect::<Vec<_>>().join("-+-"));
    out.push('\n');
    for cells in &all {
        out.push_str(&line(cells));
    }
    out
}

/// A Markdown table (pipes in cells escaped).
pub fn markdown_table(rows: &[Row]) -> String {
    let esc = |s: &str| s.replace('|', "\\|").replace('\n', " ");
    let mut out = format!("| {} |\n|{}\n", HEADERS.join(" | "), " --- |".repeat(HEADERS.len()));
    for row in rows {
        let cells = row.cells();
        let _ = writeln!(out, "| {} |", cells.iter().map(|c| esc(c)).collect::<Vec<_>>().join(" | "));
    }
    out
}

/// What `RESULTS.md` says about the run besides the table.
#[derive(Debug, Clone, Default)]
pub struct RunInfo {
    pub machine: String,
    pub date_utc: String,
    pub commit: String,
    pub command: String,
    pub duration: String,
    /// Free-form notes: noise, how things were measured.
    pub notes: Vec<String>,
}

/// The whole `bench/RESULTS.md`: header, table, then one section per
/// benchmark (`(title, markdown body)`) with the stage timings.
pub fn results_markdown(info: &RunInfo, rows: &[Row], sections: &[(String, String)]) -> String {
    let mut out = String::from("# callcard benchmark results\n\n");
    out.push_str("Written by `cargo xtask bench` (crate `bench/`); every figure is beside a baseline measured in the same run, because this machine is shared and noisy.\n\n");
    let _ = writeln!(out, "- **Machine:** {}", info.machine);
    let _ = writeln!(out, "- **Date:** {}", info.date_utc);
    let _ = writeln!(out, "- **Commit:** {}", info.commit);
    let _ = writeln!(out, "- **Command:** `{}`", info.command);
    let _ = writeln!(out, "- **Run took:** {}", info.duration);
    for note in &info.notes {
        let _ = writeln!(out, "- {note}");
    }
    out.push_str("\n## Figures\n\n");
    out.push_str(&markdown_table(rows));
    for (title, body) in sections {
        let _ = write!(out, "\n## {title}\n\n{}\n", body.trim_end());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows() -> Vec<Row> {
        vec![
            Row::new("1", "call-pop p99 (WebSocket)", "31.0 ms", "backend 4 ms")
                .target("≤ 25 ms", Verdict::at_most(31.0, 25.0, "ms")),
            Row::new("3", "ingest SQLite", "0.62 × bare", "bare 9000/s").target("≥ 0.5", Verdict::Met),
            Row::new("4", "Kommo budget", "—", "—").target("0 × 429", Verdict::NotMeasured("no CRM sync | yet".into())),
        ]
    }

    #[test]
    fn verdicts_say_by_how_much() {
        assert_eq!(Verdict::at_most(31.0, 25.0, "ms"), Verdict::Missed("6 ms (24 % over)".into()));
        assert_eq!(Verdict::at_most(25.0, 25.0, "ms"), Verdict::Met);
        assert_eq!(Verdict::at_least(0.4, 0.5, "×"), Verdict::Missed("0.10 × (20 % under)".into()));
        assert_eq!(Verdict::at_least(60_000.0, 50_000.0, "clients"), Verdict::Met);
        assert_eq!(Verdict::Missed("x".into()).label(), "MISSED by x");
    }

    #[test]
    fn text_table_aligns_columns() {
        let t = text_table(&rows());
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines.len(), 5);
        assert!(lines[0].starts_with("# | measure"));
        let bar = lines[0].find(" | measure").unwrap();
        assert!(lines.iter().skip(2).all(|l| l[bar..].starts_with(" | ")), "{t}");
        assert!(t.contains("MISSED by 6 ms (24 % over)"));
    }

    #[test]
    fn markdown_has_header_table_and_sections() {
        let info = RunInfo {
            machine: "AMD EPYC, 2 cores".into(),
            date_utc: callcard_calls::note::format_utc(0),
            commit: "abc1234".into(),
            command: "cargo xtask bench".into(),
            duration: "5 min".into(),
            notes: vec!["noisy".into()],
        };
        let md = results_markdown(&info, &rows(), &[("1. Call-pop".into(), "stages\n".into())]);
        assert!(md.contains("- **Machine:** AMD EPYC, 2 cores"));
        assert!(md.contains("- **Date:** 1970-01-01 00:00:00 UTC"));
        assert!(md.contains("| # | measure | figure | same-run baseline | target | verdict |"));
        assert!(md.contains("no CRM sync \\| yet"), "pipes are escaped: {md}");
        assert!(md.contains("\n## 1. Call-pop\n\nstages\n"));
    }
}
