//! Printing the runs, the ratio to the null webhook, the SVG chart and the
//! load section of bench/RESULTS.md (between its markers, rewritten).

use std::{fmt::Write, path::PathBuf, process::Command};

use super::{Run, client::Protocol, plot};

const BEGIN: &str = "<!-- load:begin (written by cargo bench --bench load) -->";
const END: &str = "<!-- load:end -->";

pub fn row(r: &Run) -> String {
    let o = &r.outcome;
    format!(
        "| {} | {} | {} | {} | {:.0} | {:.3} | {:.3} | {:.3} | {:.3} | {:.3} | {} |",
        r.target,
        r.path,
        r.protocol.as_str(),
        r.mode,
        o.throughput(),
        o.ms(0.50),
        o.ms(0.90),
        o.ms(0.99),
        o.ms(0.999),
        o.ms(1.0),
        o.errors
    )
}

fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpu
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .map_or("unknown CPU", |m| m.trim_start_matches([' ', '\t', ':']));
    let cores = std::thread::available_parallelism().map_or(0, usize::from);
    let commit = Command::new("git")
        .args(["rev-parse", "--short", "HEAD"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default();
    format!(
        "{cores} cores ({model}), {}, commit {commit}",
        jiff::Timestamp::now().strftime("%Y-%m-%d %H:%M UTC")
    )
}

/// gitops-guard's closed-loop throughput as a share of the null webhook's.
fn ratios(runs: &[Run]) -> Vec<String> {
    let closed = |target: &str, path: &str, p: Protocol| {
        runs.iter()
            .find(|r| {
                r.target == target && r.path == path && r.protocol == p && !r.mode.ends_with("/s")
            })
            .map(|r| r.outcome.throughput())
    };
    let mut lines = Vec::new();
    for path in ["/validate", "/mutate"] {
        for p in [Protocol::Http1, Protocol::Http2] {
            if let (Some(g), Some(n)) = (closed("gitops-guard", path, p), closed("null", path, p)) {
                lines.push(format!(
                    "- {path} over {}: gitops-guard {g:.0}/s = **{:.0} %** of the null webhook's {n:.0}/s",
                    p.as_str(),
                    100.0 * g / n
                ));
            }
        }
    }
    lines
}

pub fn write(runs: &[Run], concurrency: usize, rate: u64, seconds: u64) -> Result<(), String> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let series: Vec<plot::Series<'_>> = runs
        .iter()
        .filter(|r| r.path == "/validate" && !r.mode.ends_with("/s"))
        .map(|r| plot::Series {
            name: format!("{} {} {}", r.target, r.protocol.as_str(), r.mode),
            outcome: &r.outcome,
        })
        .collect();
    let title = format!("/validate latency over TLS, {concurrency} concurrent, keep-alive");
    plot::draw(&root.join("bench/load.svg"), &title, &series)?;
    let mut section = String::new();
    let _ = writeln!(section, "{BEGIN}");
    let _ = writeln!(
        section,
        "Machine: {}. Each row: 1 s warm-up, then {seconds} s measured; client and server share the cores.",
        machine()
    );
    let _ = writeln!(
        section,
        "Command: `cargo bench --bench load -- --seconds {seconds} --concurrency {concurrency} --rate {rate}`.\n"
    );
    let _ = writeln!(
        section,
        "| target | path | protocol | load | reviews/s | p50 ms | p90 ms | p99 ms | p99.9 ms | max ms | errors |"
    );
    let _ = writeln!(section, "|---|---|---|---|---|---|---|---|---|---|---|");
    for r in runs {
        let _ = writeln!(section, "{}", row(r));
    }
    let _ = writeln!(section);
    for line in ratios(runs) {
        println!("{line}");
        let _ = writeln!(section, "{line}");
    }
    let _ = writeln!(
        section,
        "\n![/validate latency percentiles](load.svg)\n{END}"
    );
    super::results_file::write_section(
        BEGIN,
        END,
        "## Load over TLS: gitops-guard against the null webhook",
        &section,
    )
}
