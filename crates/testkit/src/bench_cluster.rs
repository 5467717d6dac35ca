//! The local control plane (scripts/up.sh) as the benchmarks drive it.

use std::{
    path::{Path, PathBuf},
    process::{Command, Stdio},
};

pub struct Env {
    pub root: PathBuf,
    pub run: PathBuf,
    /// The bench's own build of the guard (`CARGO_BIN_EXE_gitops-guard`).
    pub guard_bin: PathBuf,
}

impl Env {
    pub fn kubectl(&self, who: &str, args: &[&str], stdin: Option<&str>) -> Result<String, String> {
        let mut cmd = Command::new(self.root.join("tests/cluster/bin/kubectl"));
        cmd.args(args)
            .env(
                "KUBECONFIG",
                self.run.join(format!("cluster/{who}.kubeconfig")),
            )
            .stdin(if stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().map_err(|e| e.to_string())?;
        if let (Some(text), Some(mut pipe)) = (stdin, child.stdin.take()) {
            use std::io::Write;
            pipe.write_all(text.as_bytes()).map_err(|e| e.to_string())?;
        }
        let out = child.wait_with_output().map_err(|e| e.to_string())?;
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).into_owned())
        } else {
            Err(String::from_utf8_lossy(&out.stderr).into_owned())
        }
    }

    pub fn env_value(&self, file: &str, key: &str) -> String {
        std::fs::read_to_string(self.run.join(file))
            .unwrap_or_default()
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{key}=")).map(str::to_owned))
            .unwrap_or_default()
    }

    pub fn script(&self, name: &str, action: &str) -> bool {
        Command::new(self.root.join("scripts").join(name))
            .arg(action)
            .arg(&self.run)
            .env("GG_GUARD_BIN", &self.guard_bin)
            .status()
            .is_ok_and(|s| s.success())
    }
}

impl Env {
    /// ConfigMaps `cm-{i}` for `i` in `names`, owned by the Flux
    /// Kustomization flux-system/apps, server-side applied as
    /// kustomize-controller in batches of 500.
    pub fn apply_owned_configmaps(
        &self,
        ns: &str,
        names: std::ops::Range<usize>,
    ) -> Result<(), String> {
        let mut start = names.start;
        while start < names.end {
            let end = (start + 500).min(names.end);
            let items: String = (start..end)
                .map(|i| {
                    format!(
                        "- apiVersion: v1\n  kind: ConfigMap\n  metadata:\n    name: cm-{i}\n    namespace: {ns}\n    labels:\n      \
                         kustomize.toolkit.fluxcd.io/name: apps\n      kustomize.toolkit.fluxcd.io/namespace: flux-system\n  data: {{key: v{i}}}\n"
                    )
                })
                .collect();
            let list = format!("apiVersion: v1\nkind: List\nitems:\n{items}");
            let args = [
                "apply",
                "--server-side",
                "--field-manager=kustomize-controller",
                "-f",
                "-",
            ];
            self.kubectl("kustomize-controller", &args, Some(&list))?;
            start = end;
        }
        Ok(())
    }
}

/// Starts the control plane, guard, registries and Alertmanager in
/// `tmp/name`, running `guard_bin` (a bench passes its
/// `env!("CARGO_BIN_EXE_gitops-guard")` and `env!("CARGO_TARGET_TMPDIR")`).
pub fn up(name: &str, guard_bin: &str, tmp: &str) -> Result<Env, String> {
    let root = crate::repo_root();
    let run = Path::new(tmp).join(name);
    let up = Command::new(root.join("scripts/up.sh"))
        .arg(&run)
        .env("GG_GUARD_BIN", guard_bin)
        .stdout(Stdio::null())
        .status();
    let env = Env {
        root,
        run,
        guard_bin: PathBuf::from(guard_bin),
    };
    if up.is_ok_and(|s| s.success()) {
        Ok(env)
    } else {
        env.down();
        Err("scripts/up.sh failed".into())
    }
}

impl Env {
    pub fn down(&self) {
        let _ = Command::new(self.root.join("scripts/down.sh"))
            .arg(&self.run)
            .status();
    }
}

/// Resident set size of a process, in KiB (0 when it is gone).
pub fn rss_kib(pid: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

impl Env {
    fn pid(&self, name: &str) -> String {
        let file = self.run.join(format!("pids/{name}.pid"));
        std::fs::read_to_string(file)
            .unwrap_or_default()
            .trim()
            .to_owned()
    }

    /// The guard's process id.
    pub fn guard_pid(&self) -> String {
        self.pid("guard")
    }

    /// The control plane's harness process: etcd, kube-apiserver and
    /// kube-controller-manager are its children ([`tree_cpu_seconds`]).
    pub fn plane_pid(&self) -> String {
        self.pid("cluster")
    }

    /// The guard's RSS in MiB.
    pub fn guard_rss_mib(&self) -> f64 {
        rss_kib(&self.guard_pid()) as f64 / 1024.0
    }
}

/// User + system CPU time of a process, in seconds (USER_HZ = 100 on Linux).
pub fn cpu_seconds(pid: &str) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the `(comm)`, which may hold spaces: utime is the 12th, stime the 13th.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
    };
    (ticks(11) + ticks(12)) as f64 / 100.0
}

/// [`cpu_seconds`] of a process and all its descendants alive now.
pub fn tree_cpu_seconds(pid: &str) -> f64 {
    let parent_of = |p: &str| -> Option<String> {
        let stat = std::fs::read_to_string(format!("/proc/{p}/stat")).ok()?;
        let rest = stat.rsplit_once(')')?.1;
        rest.split_whitespace().nth(1).map(str::to_owned)
    };
    let all: Vec<String> = std::fs::read_dir("/proc")
        .map(|d| {
            d.filter_map(|e| e.ok()?.file_name().into_string().ok())
                .filter(|n| n.bytes().all(|b| b.is_ascii_digit()))
                .collect()
        })
        .unwrap_or_default();
    let mut tree = vec![pid.to_owned()];
    // Parents before children is not guaranteed: repeat until nothing joins.
    loop {
        let before = tree.len();
        for p in &all {
            if !tree.contains(p) && parent_of(p).is_some_and(|pp| tree.contains(&pp)) {
                tree.push(p.clone());
            }
        }
        if tree.len() == before {
            break;
        }
    }
    tree.iter().map(|p| cpu_seconds(p)).sum()
}
