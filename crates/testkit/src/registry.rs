//! A real container registry for tests and benchmarks: Debian's
//! `docker-registry` (CNCF distribution 2.8) on 127.0.0.1, started and stopped
//! here, with images pushed through its own HTTP API by `curl`.
//!
//! Synchronous std only.

use std::{
    net::TcpListener,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use sha2::{Digest, Sha256};

pub struct Registry {
    dir: tempfile::TempDir,
    addr: String,
    auth: Option<(String, String)>,
    child: Option<Child>,
}

const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";

fn sha256(bytes: &[u8]) -> String {
    let hex: String = Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("sha256:{hex}")
}

fn free_port() -> Result<u16, String> {
    let listener = TcpListener::bind("127.0.0.1:0").map_err(|e| format!("no free port: {e}"))?;
    listener
        .local_addr()
        .map(|a| a.port())
        .map_err(|e| e.to_string())
}

fn need(tool: &str, package: &str) -> Result<(), String> {
    let found = Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if found {
        Ok(())
    } else {
        Err(format!("{tool} not found: apt-get install {package}"))
    }
}

impl Registry {
    /// Starts a registry; with `basic_auth` it demands those credentials.
    pub fn start(basic_auth: Option<(&str, &str)>) -> Result<Registry, String> {
        need("docker-registry", "docker-registry")?;
        need("curl", "curl")?;
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let addr = format!("127.0.0.1:{}", free_port()?);
        let mut auth_config = String::new();
        if let Some((user, password)) = basic_auth {
            need("htpasswd", "apache2-utils")?;
            let out = Command::new("htpasswd")
                .args(["-Bbn", user, password])
                .output()
                .map_err(|e| format!("htpasswd: {e}"))?;
            let file = dir.path().join("htpasswd");
            std::fs::write(&file, &out.stdout).map_err(|e| e.to_string())?;
            auth_config = format!(
                "auth:\n  htpasswd:\n    realm: test-registry\n    path: {}\n",
                file.display()
            );
        }
        let config = format!(
            "version: 0.1\nlog:\n  level: info\n  formatter: text\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: {addr}\n{auth_config}",
            dir.path().join("data").display()
        );
        std::fs::write(dir.path().join("config.yml"), config).map_err(|e| e.to_string())?;
        let mut registry = Registry {
            dir,
            addr,
            auth: basic_auth.map(|(u, p)| (u.to_owned(), p.to_owned())),
            child: None,
        };
        registry.restart()?;
        Ok(registry)
    }

    /// A registry started by someone else (scripts/up.sh) at `addr`, whose
    /// access log is `log`: push to it and count its requests, nothing more.
    pub fn existing(
        addr: &str,
        auth: Option<(&str, &str)>,
        log: &Path,
    ) -> Result<Registry, String> {
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        std::os::unix::fs::symlink(log, dir.path().join("registry.log"))
            .map_err(|e| e.to_string())?;
        Ok(Registry {
            dir,
            addr: addr.to_owned(),
            auth: auth.map(|(u, p)| (u.to_owned(), p.to_owned())),
            child: None,
        })
    }

    pub fn addr(&self) -> &str {
        &self.addr
    }

    pub fn log_path(&self) -> PathBuf {
        self.dir.path().join("registry.log")
    }

    /// Starts (again) on the same port with the same storage.
    pub fn restart(&mut self) -> Result<(), String> {
        self.stop();
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path())
            .map_err(|e| e.to_string())?;
        let err = log.try_clone().map_err(|e| e.to_string())?;
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(self.dir.path().join("config.yml"))
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(err)
            .spawn()
            .map_err(|e| format!("docker-registry: {e}"))?;
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let code = self.curl_status(&["-o", "/dev/null", &self.url("/v2/")]);
            if matches!(code.as_deref(), Ok("200" | "401")) {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "registry on {} not answering after 10s; log {}",
                    self.addr,
                    self.log_path().display()
                ));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    fn signal(&self, signal: &str) -> Result<(), String> {
        let pid = self.child.as_ref().ok_or("registry not running")?.id();
        let ok = Command::new("kill")
            .args([signal, &pid.to_string()])
            .status()
            .is_ok_and(|s| s.success());
        if ok {
            Ok(())
        } else {
            Err(format!("kill {signal} {pid} failed"))
        }
    }

    /// Freezes the registry: connections are accepted, nothing is answered.
    pub fn pause(&self) -> Result<(), String> {
        self.signal("-STOP")
    }

    pub fn resume(&self) -> Result<(), String> {
        self.signal("-CONT")
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    fn curl(&self, args: &[&str]) -> Result<String, String> {
        let mut cmd = Command::new("curl");
        cmd.args(["-sS", "--max-time", "10"]);
        if let Some((u, p)) = &self.auth {
            cmd.args(["-u", &format!("{u}:{p}")]);
        }
        let out = cmd.args(args).output().map_err(|e| format!("curl: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "curl {args:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    fn curl_status(&self, args: &[&str]) -> Result<String, String> {
        let mut all = vec!["-w", "%{http_code}"];
        all.extend_from_slice(args);
        self.curl(&all)
    }

    fn upload_blob(&self, repo: &str, bytes: &[u8]) -> Result<String, String> {
        let digest = sha256(bytes);
        let file = self.dir.path().join("blob");
        std::fs::write(&file, bytes).map_err(|e| e.to_string())?;
        let headers = self.curl(&[
            "-i",
            "-X",
            "POST",
            &self.url(&format!("/v2/{repo}/blobs/uploads/")),
        ])?;
        let location = headers
            .lines()
            .find_map(|l| {
                let (name, value) = l.split_once(':')?;
                name.eq_ignore_ascii_case("location")
                    .then(|| value.trim().to_owned())
            })
            .ok_or_else(|| format!("no upload location in:\n{headers}"))?;
        let location = if location.starts_with('/') {
            self.url(&location)
        } else {
            location
        };
        let sep = if location.contains('?') { '&' } else { '?' };
        let put = format!("{location}{sep}digest={digest}");
        let data = format!("@{}", file.display());
        let code = self.curl_status(&[
            "-o",
            "/dev/null",
            "-X",
            "PUT",
            "-H",
            "Content-Type: application/octet-stream",
            "--data-binary",
            &data,
            &put,
        ])?;
        if code != "201" {
            return Err(format!("blob upload answered {code}"));
        }
        Ok(digest)
    }

    /// Pushes a one-layer OCI image as `repo:tag`; `seed` changes its config,
    /// so another seed moves the tag. Returns the digest the registry serves.
    pub fn push(&self, repo: &str, tag: &str, seed: &str) -> Result<String, String> {
        let layer = vec![0u8; 1024]; // an empty tar archive
        let layer_digest = self.upload_blob(repo, &layer)?;
        let config = format!(
            r#"{{"architecture":"amd64","os":"linux","config":{{"Labels":{{"seed":"{seed}"}}}},"rootfs":{{"type":"layers","diff_ids":["{layer_digest}"]}}}}"#
        );
        let config_digest = self.upload_blob(repo, config.as_bytes())?;
        let manifest = format!(
            r#"{{"schemaVersion":2,"mediaType":"{OCI_MANIFEST}","config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"{config_digest}","size":{}}},"layers":[{{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"{layer_digest}","size":{}}}]}}"#,
            config.len(),
            layer.len()
        );
        let file = self.dir.path().join("manifest.json");
        std::fs::write(&file, &manifest).map_err(|e| e.to_string())?;
        let data = format!("@{}", file.display());
        let url = self.url(&format!("/v2/{repo}/manifests/{tag}"));
        let content_type = format!("Content-Type: {OCI_MANIFEST}");
        let code = self.curl_status(&[
            "-o",
            "/dev/null",
            "-X",
            "PUT",
            "-H",
            &content_type,
            "--data-binary",
            &data,
            &url,
        ])?;
        if code != "201" {
            return Err(format!("manifest PUT answered {code}"));
        }
        let expected = sha256(manifest.as_bytes());
        let served = self.served_digest(repo, tag)?;
        if served != expected {
            return Err(format!("registry serves {served}, pushed {expected}"));
        }
        Ok(served)
    }

    /// The digest the registry serves for `repo:tag` (HEAD, OCI Accept). Not
    /// counted by `manifest_requests` (it carries its own user agent).
    pub fn served_digest(&self, repo: &str, tag: &str) -> Result<String, String> {
        let url = self.url(&format!("/v2/{repo}/manifests/{tag}"));
        let accept = format!("Accept: {OCI_MANIFEST}");
        let headers = self.curl(&["-I", "-A", "fixture", "-H", &accept, &url])?;
        headers
            .lines()
            .find_map(|l| {
                let (name, value) = l.split_once(':')?;
                name.eq_ignore_ascii_case("docker-content-digest")
                    .then(|| value.trim().to_owned())
            })
            .ok_or_else(|| format!("no Docker-Content-Digest for {repo}:{tag}:\n{headers}"))
    }

    /// Manifest HEAD/GET requests for `repo` in the registry's access log,
    /// except the fixture's own.
    pub fn manifest_requests(&self, repo: &str) -> usize {
        let log = std::fs::read_to_string(self.log_path()).unwrap_or_default();
        let head = format!("\"HEAD /v2/{repo}/manifests/");
        let get = format!("\"GET /v2/{repo}/manifests/");
        log.lines()
            .filter(|l| (l.contains(&head) || l.contains(&get)) && !l.ends_with("\"fixture\""))
            .count()
    }

    /// `manifest_requests` once the count has not changed for 300 ms (the
    /// registry writes its log asynchronously).
    pub fn manifest_requests_settled(&self, repo: &str) -> usize {
        let mut last = self.manifest_requests(repo);
        let mut stable_since = Instant::now();
        let deadline = Instant::now() + Duration::from_secs(5);
        while stable_since.elapsed() < Duration::from_millis(300) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
            let now = self.manifest_requests(repo);
            if now != last {
                last = now;
                stable_since = Instant::now();
            }
        }
        last
    }

    pub fn data_dir(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        if self.child.is_some() {
            let _ = self.resume();
            self.stop();
        }
    }
}
