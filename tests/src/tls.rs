//! Certificates made at test time with the `openssl` command: a private
//! CA and a server certificate it signs, as a home user would make for a
//! DoT/DoH server on the LAN. Nothing is fetched or installed system-wide.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

/// A CA and a server certificate for one DNS name, as PEM files.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    /// The CA certificate: the `ca_file` a client trusts.
    pub ca_cert: PathBuf,
    /// The server certificate (signed by the CA), for `name` only.
    pub cert: PathBuf,
    /// The server certificate's private key.
    pub key: PathBuf,
    /// The DNS name in the certificate's subjectAltName.
    pub name: String,
}

impl TlsFiles {
    /// Makes a fresh P-256 CA and a server certificate for `name` in `dir`
    /// (valid from an hour ago, for two days).
    pub fn generate(dir: &Path, name: &str) -> Result<TlsFiles> {
        std::fs::create_dir_all(dir)?;
        let ca_conf = dir.join("ca.cnf");
        std::fs::write(
            &ca_conf,
            "[req]\ndistinguished_name = dn\nprompt = no\nx509_extensions = v3_ca\n\
             [dn]\nCN = e2e lab CA\n\
             [v3_ca]\nbasicConstraints = critical,CA:TRUE\n\
             keyUsage = critical,keyCertSign,cRLSign\nsubjectKeyIdentifier = hash\n",
        )?;
        let leaf_conf = dir.join("server.cnf");
        std::fs::write(
            &leaf_conf,
            format!("[req]\ndistinguished_name = dn\nprompt = no\n[dn]\nCN = {name}\n"),
        )?;
        let leaf_ext = dir.join("server.ext");
        std::fs::write(
            &leaf_ext,
            format!(
                "basicConstraints = critical,CA:FALSE\n\
                 keyUsage = critical,digitalSignature\n\
                 extendedKeyUsage = serverAuth\n\
                 subjectAltName = DNS:{name}\n\
                 subjectKeyIdentifier = hash\n\
                 authorityKeyIdentifier = keyid\n"
            ),
        )?;
        let files = TlsFiles {
            ca_cert: dir.join("ca.pem"),
            cert: dir.join("server.pem"),
            key: dir.join("server.key"),
            name: name.to_string(),
        };
        let ca_key = dir.join("ca.key");
        let csr = dir.join("server.csr");
        let p = |p: &Path| p.to_string_lossy().into_owned();
        openssl(
            dir,
            &[
                "req",
                "-x509",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:prime256v1",
                "-nodes",
                "-days",
                "2",
                "-config",
                &p(&ca_conf),
                "-keyout",
                &p(&ca_key),
                "-out",
                &p(&files.ca_cert),
            ],
        )?;
        openssl(
            dir,
            &[
                "req",
                "-new",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:prime256v1",
                "-nodes",
                "-config",
                &p(&leaf_conf),
                "-keyout",
                &p(&files.key),
                "-out",
                &p(&csr),
            ],
        )?;
        openssl(
            dir,
            &[
                "x509",
                "-req",
                "-in",
                &p(&csr),
                "-CA",
                &p(&files.ca_cert),
                "-CAkey",
                &p(&ca_key),
                "-set_serial",
                "2",
                "-days",
                "2",
                "-extfile",
                &p(&leaf_ext),
                "-out",
                &p(&files.cert),
            ],
        )?;
        Ok(files)
    }
}

/// Runs `openssl ARGS` in `dir` (offline); an error with its stderr.
fn openssl(dir: &Path, args: &[&str]) -> Result<()> {
    let path = crate::require::tool("openssl")?;
    let out = Command::new(path)
        .args(args)
        .current_dir(dir)
        .output()
        .context("running openssl")?;
    if !out.status.success() {
        bail!(
            "openssl {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(())
}
