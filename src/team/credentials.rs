//! A member's team password, kept out of the project file: the `.thyme` file holds the
//! server's URL without it, and the password lives in a file only its user can read, in the
//! app's config folder (`team-credentials/`), or in `THYME_TEAM_PASSWORD`. A URL that
//! already carries a password is used as it is.

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::paths::AppDirs;

/// The environment variable that gives the password instead of the file.
pub const PASSWORD_ENV: &str = "THYME_TEAM_PASSWORD";

/// A PostgreSQL URL cut into scheme, user, password (as written, percent-encoded), and the
/// rest (host, port, database, parameters).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UrlParts {
    pub scheme: String,
    pub user: Option<String>,
    pub password: Option<String>,
    pub rest: String,
}

impl UrlParts {
    pub fn parse(url: &str) -> Option<Self> {
        let (scheme, after) = url.split_once("://")?;
        let authority_end = after.find('/').unwrap_or(after.len());
        let (user, password, rest) = match after[..authority_end].rfind('@') {
            Some(at) => {
                let userinfo = &after[..at];
                let (u, p) = match userinfo.split_once(':') {
                    Some((u, p)) => (u.to_owned(), Some(p.to_owned())),
                    None => (userinfo.to_owned(), None),
                };
                (Some(u), p, after[at + 1..].to_owned())
            }
            None => (None, None, after.to_owned()),
        };
        Some(Self {
            scheme: scheme.to_owned(),
            user,
            password,
            rest,
        })
    }

    /// The URL again, with the password as given (`None`: without one).
    pub fn to_url(&self, password: Option<&str>) -> String {
        match (&self.user, password) {
            (Some(u), Some(p)) => format!("{}://{u}:{p}@{}", self.scheme, self.rest),
            (Some(u), None) => format!("{}://{u}@{}", self.scheme, self.rest),
            (None, _) => format!("{}://{}", self.scheme, self.rest),
        }
    }
}

/// The URL without its password, and the password.
pub fn split_password(url: &str) -> (String, Option<String>) {
    match UrlParts::parse(url) {
        Some(p) => (p.to_url(None), p.password.clone()),
        None => (url.to_owned(), None),
    }
}

/// `url` for another login: same server, database and parameters.
pub fn for_login(url: &str, user: &str, password: &str) -> String {
    match UrlParts::parse(url) {
        Some(mut p) => {
            p.user = Some(user.to_owned());
            p.to_url(Some(password))
        }
        None => url.to_owned(),
    }
}

/// The URL with the password shown as `***`.
pub fn masked(url: &str) -> String {
    match UrlParts::parse(url) {
        Some(p) if p.password.is_some() => p.to_url(Some("***")),
        _ => url.to_owned(),
    }
}

/// Where the password for `url` (without password) is kept.
pub fn file_for(dirs: &AppDirs, url: &str) -> PathBuf {
    let (bare, _) = split_password(url);
    let key = hex::encode(Sha256::digest(bare.as_bytes()));
    dirs.config
        .join("team-credentials")
        .join(format!("{}.password", &key[..24]))
}

/// Keep `password` for `url`, readable only by this user. Returns the file.
pub fn save(dirs: &AppDirs, url: &str, password: &str) -> std::io::Result<PathBuf> {
    let path = file_for(dirs, url);
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
        restrict(dir, 0o700)?;
    }
    let tmp = path.with_extension("tmp");
    {
        use std::io::Write as _;
        let mut f = open_private(&tmp)?;
        f.write_all(password.as_bytes())?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, &path)?;
    Ok(path)
}

#[cfg(unix)]
fn open_private(path: &Path) -> std::io::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt as _;
    std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
}

#[cfg(not(unix))]
fn open_private(path: &Path) -> std::io::Result<std::fs::File> {
    std::fs::File::create(path)
}

#[cfg(unix)]
fn restrict(path: &Path, mode: u32) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
}

#[cfg(not(unix))]
fn restrict(_path: &Path, _mode: u32) -> std::io::Result<()> {
    Ok(())
}

/// The password kept for `url`, from `THYME_TEAM_PASSWORD` or the file.
pub fn load(dirs: &AppDirs, url: &str) -> Option<String> {
    if let Some(p) = std::env::var(PASSWORD_ENV).ok().filter(|p| !p.is_empty()) {
        return Some(p);
    }
    std::fs::read_to_string(file_for(dirs, url))
        .ok()
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
}

/// `url` ready to connect: as given when it carries a password, else with the kept one.
pub fn complete(url: &str) -> String {
    let (bare, password) = split_password(url);
    if password.is_some() {
        return url.to_owned();
    }
    match load(&AppDirs::for_user(), &bare) {
        Some(p) => match UrlParts::parse(&bare) {
            Some(parts) => parts.to_url(Some(&p)),
            None => url.to_owned(),
        },
        None => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_split_and_join_without_losing_parameters() {
        let url = "postgres://t_m_ann:s3cret@127.0.0.1:5432/team?sslmode=verify-full&sslrootcert=/a@b/ca.crt";
        let (bare, pw) = split_password(url);
        assert_eq!(pw.as_deref(), Some("s3cret"));
        assert_eq!(
            bare,
            "postgres://t_m_ann@127.0.0.1:5432/team?sslmode=verify-full&sslrootcert=/a@b/ca.crt"
        );
        assert_eq!(
            masked(url),
            "postgres://t_m_ann:***@127.0.0.1:5432/team?sslmode=verify-full&sslrootcert=/a@b/ca.crt"
        );
        assert_eq!(
            for_login("postgres://lead@h:1/db?sslmode=require", "bob", "pw"),
            "postgres://bob:pw@h:1/db?sslmode=require"
        );
        assert_eq!(split_password("postgres://h/db").1, None);
    }

    #[test]
    fn a_saved_password_is_private_and_completes_its_url() {
        let dir = tempfile::tempdir().unwrap();
        let dirs = AppDirs::under(dir.path().to_owned());
        let url = "postgres://u@127.0.0.1:9/db";
        let path = save(&dirs, url, "pw1").unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600);
        }
        assert_eq!(load(&dirs, url).as_deref(), Some("pw1"));
        assert_eq!(load(&dirs, "postgres://u@127.0.0.1:9/other"), None);
    }
}
