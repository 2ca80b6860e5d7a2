//! WireGuard keys as the operator handles them: base64 text, private and
//! preshared keys in files only root may read.

use std::fmt;
use std::path::Path;

use wireguard_control::Key;

/// A private or preshared key. Its `Debug` never shows the key, so neither
/// a log line nor a printed config can leak it.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretKey(Key);

impl SecretKey {
    pub fn new(key: Key) -> SecretKey {
        SecretKey(key)
    }

    pub fn key(&self) -> &Key {
        &self.0
    }

    /// The public key of this private key.
    pub fn public(&self) -> Key {
        self.0.get_public()
    }
}

impl fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretKey(..)")
    }
}

/// Parses the base64 form `wg genkey` and `routerctl wg genkey` print.
pub fn parse_key(text: &str) -> Result<Key, String> {
    let text = text.trim();
    // 32 bytes are 44 base64 characters ending in one `=`.
    if text.len() != 44 {
        return Err(format!(
            "expected 32 bytes of base64 (44 characters, as `routerctl wg genkey` prints), found {} characters",
            text.len()
        ));
    }
    Key::from_base64(text).map_err(|_| {
        "expected 32 bytes of base64 (as `routerctl wg genkey` prints), found characters that are not base64".to_string()
    })
}

/// Reads a key file (see [`crate::secret::read_secret_file`]).
pub fn read_key_file(path: &Path) -> Result<SecretKey, String> {
    let text = crate::secret::read_secret_file(path)?;
    parse_key(&text)
        .map(SecretKey)
        .map_err(|e| format!("key file {}: {e}", path.display()))
}

/// A new private key, as base64.
pub fn generate_private() -> String {
    Key::generate_private().to_base64()
}

/// The public key of a base64 private key, as base64.
pub fn public_of(private: &str) -> Result<String, String> {
    parse_key(private).map(|key| key.get_public().to_base64())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    #[test]
    fn generated_keys_round_trip_and_public_keys_are_deterministic() {
        let private = generate_private();
        assert_eq!(private.len(), 44);
        let public = public_of(&private).unwrap();
        assert_eq!(public, public_of(&format!("{private}\n")).unwrap());
        assert_ne!(public, private);
        assert_ne!(generate_private(), private);
    }

    #[test]
    fn a_known_key_pair_matches_wg_pubkey() {
        // From `echo ... | wg pubkey` (wireguard-tools 1.0.20210914).
        let private = "YBw1T8Nj5u4BadxQVM1eT4T8JRH66vmGY9ZuGqN69mY=";
        let public = "FfMiITAKp1xwMxy8mx1bKhoMRR+dz9zpstcUGX6mj3Y=";
        assert_eq!(public_of(private).unwrap(), public);
    }

    #[test]
    fn malformed_keys_are_refused_with_the_reason() {
        assert!(parse_key("abc").unwrap_err().contains("44 characters"));
        let not_base64 = "!".repeat(44);
        assert!(parse_key(&not_base64).unwrap_err().contains("not base64"));
    }

    #[test]
    fn loose_key_files_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("site.key");
        std::fs::write(&path, generate_private()).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let error = read_key_file(&path).unwrap_err();
        assert!(error.contains("mode 0644"), "{error}");
        assert!(error.contains("site.key"), "{error}");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        let key = read_key_file(&path).unwrap();
        assert_eq!(format!("{key:?}"), "SecretKey(..)");
    }
}
