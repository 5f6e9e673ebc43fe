//! A throwaway PostgreSQL server in a folder: `initdb`, `pg_ctl start|stop`, on loopback.
//!
//! The tests and the soak benchmark need a real server they can stop and restart; a lead can
//! use one to try team mode on one machine. PostgreSQL refuses to run as root, so as root the
//! programs run as `nobody` (via `runuser`) in a folder given to that user.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;

use thiserror::Error;

#[derive(Debug, Error)]
pub enum ClusterError {
    #[error(
        "PostgreSQL's server programs (initdb, pg_ctl) were not found; install the postgresql package or set THYME_PG_BIN to their folder"
    )]
    NoServerPrograms,
    #[error("{program} failed: {detail}")]
    Failed { program: String, detail: String },
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// A PostgreSQL server of our own, stopped (and its folder removed) when dropped.
#[derive(Debug)]
pub struct LocalCluster {
    _dir: tempfile::TempDir,
    root: PathBuf,
    bin: PathBuf,
    port: u16,
    run_as: Option<String>,
    fsync: bool,
    /// Whether the server offers TLS (with a certificate made at start).
    tls: bool,
    /// The superuser's password (random, made at start; every login needs SCRAM-SHA-256).
    password: String,
}

/// The folder holding `initdb` and `pg_ctl`: `THYME_PG_BIN`, else next to `pg_ctl` on PATH,
/// else the newest `/usr/lib/postgresql/*/bin` (Debian's layout).
pub fn server_programs() -> Result<PathBuf, ClusterError> {
    if let Some(dir) = std::env::var_os("THYME_PG_BIN") {
        let dir = PathBuf::from(dir);
        if dir.join("pg_ctl").is_file() {
            return Ok(dir);
        }
    }
    let mut candidates: Vec<PathBuf> = Vec::new();
    if let Ok(entries) = std::fs::read_dir("/usr/lib/postgresql") {
        let mut versions: Vec<(u32, PathBuf)> = entries
            .flatten()
            .filter_map(|e| {
                let v = e.file_name().to_string_lossy().parse::<u32>().ok()?;
                Some((v, e.path().join("bin")))
            })
            .collect();
        versions.sort();
        candidates.extend(versions.into_iter().rev().map(|(_, p)| p));
    }
    if let Some(path) = std::env::var_os("PATH") {
        candidates.extend(std::env::split_paths(&path));
    }
    candidates
        .into_iter()
        .find(|d| d.join("pg_ctl").is_file() && d.join("initdb").is_file())
        .map(|d| {
            std::fs::canonicalize(d.join("pg_ctl"))
                .ok()
                .and_then(|p| p.parent().map(Path::to_owned))
                .unwrap_or(d)
        })
        .ok_or(ClusterError::NoServerPrograms)
}

fn free_port() -> Result<u16, ClusterError> {
    let listener = TcpListener::bind("127.0.0.1:0").map_err(|source| ClusterError::Io {
        path: "127.0.0.1:0".into(),
        source,
    })?;
    listener
        .local_addr()
        .map(|a| a.port())
        .map_err(|source| ClusterError::Io {
            path: "127.0.0.1:0".into(),
            source,
        })
}

/// Give `path` and all below it to `user` (the server's user when run as root); nothing
/// without one.
fn give_to(user: Option<&str>, path: &Path) -> Result<(), ClusterError> {
    let Some(user) = user else { return Ok(()) };
    let status = Command::new("chown")
        .arg("-R")
        .arg(user)
        .arg(path)
        .status()
        .map_err(|source| ClusterError::Io {
            path: "chown".into(),
            source,
        })?;
    if status.success() {
        Ok(())
    } else {
        Err(ClusterError::Failed {
            program: "chown".into(),
            detail: format!("could not give {} to {user}", path.display()),
        })
    }
}

impl LocalCluster {
    /// Make a new cluster in a temporary folder and start it, serving TLS with a certificate
    /// made at start ([`LocalCluster::ca_file`]). `fsync` off suits tests; the
    /// soak keeps it on, since it restarts the server as a crash would.
    pub fn start_new(fsync: bool) -> Result<Self, ClusterError> {
        Self::start_new_with(fsync, true)
    }

    /// As [`LocalCluster::start_new`], choosing whether the server offers TLS (off: to try a
    /// client that requires it against a server that does not).
    pub fn start_new_with(fsync: bool, tls: bool) -> Result<Self, ClusterError> {
        let bin = server_programs()?;
        let dir = tempfile::Builder::new()
            .prefix("thyme-pg-")
            .tempdir()
            .map_err(|source| ClusterError::Io {
                path: std::env::temp_dir(),
                source,
            })?;
        let root = dir.path().to_owned();
        // SAFETY: geteuid has no preconditions and cannot fail.
        let run_as = (unsafe { libc::geteuid() } == 0).then(|| "nobody".to_owned());
        give_to(run_as.as_deref(), &root)?;
        let mut cluster = Self {
            _dir: dir,
            root,
            bin,
            port: free_port()?,
            run_as,
            fsync,
            tls,
            password: uuid::Uuid::new_v4().simple().to_string(),
        };
        let data = cluster.data_dir();
        let pwfile = cluster.root.join("superuser.pw");
        std::fs::write(&pwfile, &cluster.password).map_err(|source| ClusterError::Io {
            path: pwfile.clone(),
            source,
        })?;
        give_to(cluster.run_as.as_deref(), &pwfile)?;
        if tls {
            cluster.make_certificate()?;
        }
        cluster.run(
            "initdb",
            &[
                "-D".as_ref(),
                data.as_os_str(),
                "-U".as_ref(),
                "postgres".as_ref(),
                "-A".as_ref(),
                "scram-sha-256".as_ref(),
                "--pwfile".as_ref(),
                pwfile.as_os_str(),
                "-E".as_ref(),
                "UTF8".as_ref(),
                "--no-sync".as_ref(),
                "--no-instructions".as_ref(),
            ],
        )?;
        let _ = std::fs::remove_file(&pwfile);
        let mut last = None;
        for _ in 0..3 {
            match cluster.start() {
                Ok(()) => return Ok(cluster),
                Err(e) => {
                    last = Some(e);
                    cluster.port = free_port()?;
                }
            }
        }
        Err(last.unwrap_or(ClusterError::NoServerPrograms))
    }

    fn data_dir(&self) -> PathBuf {
        self.root.join("data")
    }

    /// The certificate of the authority that signed the server's (made at start, for this
    /// server only): the `sslrootcert` of a `verify-full` connection to it.
    pub fn ca_file(&self) -> PathBuf {
        self.root.join("tls").join("ca.crt")
    }

    /// A small authority and a server certificate it signs for 127.0.0.1 and localhost (EC
    /// P-256, 30 days), by `openssl`; the server's key readable by the server's user only.
    fn make_certificate(&self) -> Result<(), ClusterError> {
        let dir = self.root.join("tls");
        let io = |path: &Path| {
            let path = path.to_owned();
            move |source| ClusterError::Io { path, source }
        };
        std::fs::create_dir_all(&dir).map_err(io(&dir))?;
        let ext = dir.join("server.ext");
        std::fs::write(
            &ext,
            "basicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=serverAuth\nsubjectAltName=IP:127.0.0.1,DNS:localhost\n",
        )
        .map_err(io(&ext))?;
        let ec = [
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
        ];
        let steps: [Vec<&str>; 3] = [
            [
                &["req", "-x509"][..],
                &ec,
                &["-days", "30", "-subj", "/CN=thyme-studio team CA"],
            ]
            .concat()
            .into_iter()
            .chain(["-keyout", "ca.key", "-out", "ca.crt"])
            .collect(),
            [&["req", "-new"][..], &ec, &["-subj", "/CN=127.0.0.1"]]
                .concat()
                .into_iter()
                .chain(["-keyout", "server.key", "-out", "server.csr"])
                .collect(),
            vec![
                "x509",
                "-req",
                "-in",
                "server.csr",
                "-CA",
                "ca.crt",
                "-CAkey",
                "ca.key",
                "-set_serial",
                "1",
                "-days",
                "30",
                "-extfile",
                "server.ext",
                "-out",
                "server.crt",
            ],
        ];
        for args in steps {
            let out = Command::new("openssl")
                .args(&args)
                .current_dir(&dir)
                .output()
                .map_err(|source| ClusterError::Io {
                    path: "openssl".into(),
                    source,
                })?;
            if !out.status.success() {
                return Err(ClusterError::Failed {
                    program: format!("openssl {}", args[0]),
                    detail: String::from_utf8_lossy(&out.stderr).trim().to_owned(),
                });
            }
        }
        // The authority signs this one certificate; its key is not kept.
        for spent in ["ca.key", "server.csr", "server.ext"] {
            let _ = std::fs::remove_file(dir.join(spent));
        }
        let key = dir.join("server.key");
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).map_err(io(&key))?;
        give_to(self.run_as.as_deref(), &dir)
    }

    fn run(&self, program: &str, args: &[&std::ffi::OsStr]) -> Result<(), ClusterError> {
        let exe = self.bin.join(program);
        let mut cmd = match &self.run_as {
            Some(user) => {
                let mut c = Command::new("runuser");
                c.arg("-u").arg(user).arg("--").arg(&exe);
                c
            }
            None => Command::new(&exe),
        };
        cmd.args(args).env("LC_ALL", "C").current_dir(&self.root);
        let out = cmd.output().map_err(|source| ClusterError::Io {
            path: exe.clone(),
            source,
        })?;
        if out.status.success() {
            Ok(())
        } else {
            let mut detail = String::from_utf8_lossy(&out.stderr).trim().to_owned();
            if let Ok(log) = std::fs::read_to_string(self.root.join("server.log")) {
                let tail: Vec<&str> = log.lines().rev().take(5).collect();
                let tail: Vec<&str> = tail.into_iter().rev().collect();
                detail = format!("{detail}\nserver log: {}", tail.join("\n"));
            }
            Err(ClusterError::Failed {
                program: program.to_owned(),
                detail,
            })
        }
    }

    /// Start the server (waits until it accepts connections).
    pub fn start(&mut self) -> Result<(), ClusterError> {
        let tls = self.root.join("tls");
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync={} -c max_connections=60 -c ssl={} -c ssl_cert_file={} -c ssl_key_file={}",
            self.port,
            self.root.display(),
            if self.fsync { "on" } else { "off" },
            if self.tls { "on" } else { "off" },
            tls.join("server.crt").display(),
            tls.join("server.key").display(),
        );
        let data = self.data_dir();
        let log = self.root.join("server.log");
        self.run(
            "pg_ctl",
            &[
                "-D".as_ref(),
                data.as_os_str(),
                "-l".as_ref(),
                log.as_os_str(),
                "-o".as_ref(),
                options.as_ref(),
                "-w".as_ref(),
                "-t".as_ref(),
                "60".as_ref(),
                "start".as_ref(),
            ],
        )
    }

    /// Stop the server: `fast` ends sessions cleanly; `immediate` is a crash (recovery on the
    /// next start).
    pub fn stop(&mut self, immediate: bool) -> Result<(), ClusterError> {
        let data = self.data_dir();
        self.run(
            "pg_ctl",
            &[
                "-D".as_ref(),
                data.as_os_str(),
                "-m".as_ref(),
                if immediate { "immediate" } else { "fast" }.as_ref(),
                "-w".as_ref(),
                "stop".as_ref(),
            ],
        )
    }

    /// A URL for `database` on this server.
    pub fn url(&self, database: &str) -> String {
        format!(
            "postgres://postgres:{}@127.0.0.1:{}/{database}",
            self.password, self.port
        )
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Make an empty database; returns its URL.
    pub fn create_database(&self, name: &str) -> Result<String, ClusterError> {
        let mut client =
            crate::store::pg_tls::connect(&self.url("postgres")).map_err(|detail| {
                ClusterError::Failed {
                    program: "connect".into(),
                    detail,
                }
            })?;
        let ident = name.replace('"', "");
        client
            .batch_execute(&format!("CREATE DATABASE \"{ident}\""))
            .map_err(|e| ClusterError::Failed {
                program: "CREATE DATABASE".into(),
                detail: crate::store::postgres::pg_message(&e),
            })?;
        Ok(self.url(&ident))
    }
}

impl Drop for LocalCluster {
    fn drop(&mut self) {
        if let Err(e) = self.stop(false) {
            tracing::debug!(error = %e, "stopping the local PostgreSQL");
        }
    }
}
