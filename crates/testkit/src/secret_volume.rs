//! A directory laid out as the kubelet lays out a Secret volume, for tests
//! of certificate reloads.

use std::os::unix::fs::symlink;
use std::path::PathBuf;

use gitops_guard::cert::Bundle;
use tempfile::TempDir;

/// A directory laid out as the kubelet lays out a Secret volume.
pub struct SecretVolume {
    pub dir: TempDir,
}

impl SecretVolume {
    pub fn new(bundle: &Bundle) -> Self {
        let volume = Self {
            dir: tempfile::tempdir().unwrap(),
        };
        volume.write_version(
            "..2026_a",
            bundle.cert_pem.as_bytes(),
            bundle.key_pem.as_bytes(),
        );
        symlink("..2026_a", volume.path("..data")).unwrap();
        symlink("..data/tls.crt", volume.cert()).unwrap();
        symlink("..data/tls.key", volume.key()).unwrap();
        volume
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    pub fn cert(&self) -> PathBuf {
        self.path("tls.crt")
    }

    pub fn key(&self) -> PathBuf {
        self.path("tls.key")
    }

    fn write_version(&self, version: &str, cert: &[u8], key: &[u8]) {
        let dir = self.path(version);
        std::fs::create_dir(&dir).unwrap();
        std::fs::write(dir.join("tls.crt"), cert).unwrap();
        std::fs::write(dir.join("tls.key"), key).unwrap();
    }

    /// What the kubelet does on a Secret update: a new timestamped
    /// directory, then `..data` replaced atomically by a rename.
    pub fn swap_to(&self, version: &str, cert: &[u8], key: &[u8]) {
        self.write_version(version, cert, key);
        symlink(version, self.path("..data_tmp")).unwrap();
        std::fs::rename(self.path("..data_tmp"), self.path("..data")).unwrap();
    }
}
