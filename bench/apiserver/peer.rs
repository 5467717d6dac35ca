//! What running Kyverno and Gatekeeper out of cluster share: their CRDs, and
//! applying policies that the engine accepts only once it is ready for them.

use std::time::{Duration, Instant};

use super::cluster::Env;

/// Applies the CRDs built beside the engine (`tests/cluster/bin/NAME-crds`)
/// and waits until `established` are served.
pub fn install_crds(env: &Env, name: &str, established: &[&str]) -> Result<(), String> {
    let crds = env.root.join(format!("tests/cluster/bin/{name}-crds"));
    let crds = crds.display().to_string();
    env.kubectl(
        "admin",
        &["apply", "--server-side", "--force-conflicts", "-f", &crds],
        None,
    )?;
    let mut wait = vec!["wait", "--for=condition=Established", "--timeout=60s"];
    wait.extend_from_slice(established);
    env.kubectl("admin", &wait, None).map(drop)
}

/// `kubectl apply -f path`, again every 2 s until it goes in or `limit`
/// passes (an engine refuses its policies until its webhook serves them, or
/// until it has made their CRDs).
pub fn apply_until_accepted(env: &Env, path: &str, limit: Duration) -> Result<(), String> {
    let deadline = Instant::now() + limit;
    loop {
        match env.kubectl("admin", &["apply", "-f", path], None) {
            Ok(_) => return Ok(()),
            Err(e) if Instant::now() > deadline => return Err(format!("{path}: {e}")),
            Err(_) => std::thread::sleep(Duration::from_secs(2)),
        }
    }
}
