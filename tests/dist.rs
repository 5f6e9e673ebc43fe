//! The Debian package and the tarball are built from this build's binary, unpacked into a
//! temporary root, and the installed program runs from there: `--version` and `demo`.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;
use std::process::Command;

fn sh(script: &str, args: &[&Path]) -> String {
    let top = Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = Command::new("bash")
        .arg(top.join("dist").join(script))
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{script}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

fn runs_from(root: &Path, bin: &Path) {
    assert!(bin.starts_with(root));
    let v = Command::new(bin).arg("--version").output().unwrap();
    assert!(v.status.success());
    assert_eq!(
        String::from_utf8_lossy(&v.stdout).trim(),
        format!("thyme-studio {}", env!("CARGO_PKG_VERSION"))
    );
    let demo = root.join("demo-project");
    let d = Command::new(bin)
        .args(["demo"])
        .arg(&demo)
        .args(["--scale", "16"])
        .output()
        .unwrap();
    assert!(d.status.success(), "{}", String::from_utf8_lossy(&d.stderr));
    assert!(demo.join("demo.thyme").exists());
}

#[test]
fn the_deb_installs_into_a_root_and_runs_from_there() {
    let dir = tempfile::tempdir().unwrap();
    let bin = Path::new(env!("CARGO_BIN_EXE_thyme-studio"));
    let deb = sh("deb.sh", &[bin, dir.path()]);
    assert!(
        deb.ends_with(&format!(
            "thyme-studio_{}_amd64.deb",
            env!("CARGO_PKG_VERSION")
        )),
        "{deb}"
    );
    let info = Command::new("dpkg-deb")
        .args(["--info", &deb])
        .output()
        .unwrap();
    let info = String::from_utf8_lossy(&info.stdout);
    assert!(info.contains("Package: thyme-studio"), "{info}");
    assert!(info.contains(&format!("Version: {}", env!("CARGO_PKG_VERSION"))));
    let root = dir.path().join("root");
    let x = Command::new("dpkg-deb")
        .args(["-x", &deb])
        .arg(&root)
        .status()
        .unwrap();
    assert!(x.success());
    for f in [
        "usr/share/applications/thyme-studio.desktop",
        "usr/share/icons/hicolor/scalable/apps/thyme-studio.svg",
        "usr/share/icons/hicolor/256x256/apps/thyme-studio.png",
        "usr/share/mime/packages/thyme-studio.xml",
        "usr/share/doc/thyme-studio/copyright",
    ] {
        assert!(root.join(f).exists(), "{f} is missing");
    }
    let desktop =
        std::fs::read_to_string(root.join("usr/share/applications/thyme-studio.desktop")).unwrap();
    assert!(desktop.contains("Exec=thyme-studio %f") && desktop.contains("Icon=thyme-studio"));
    runs_from(&root, &root.join("usr/bin/thyme-studio"));
}

#[test]
fn the_tarball_unpacks_and_runs_from_there() {
    let dir = tempfile::tempdir().unwrap();
    let bin = Path::new(env!("CARGO_BIN_EXE_thyme-studio"));
    let tarball = sh("tarball.sh", &[bin, dir.path()]);
    let root = dir.path().join("unpacked");
    std::fs::create_dir_all(&root).unwrap();
    let x = Command::new("tar")
        .arg("-xzf")
        .arg(&tarball)
        .arg("-C")
        .arg(&root)
        .status()
        .unwrap();
    assert!(x.success());
    let top = std::fs::read_dir(&root)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    assert!(top.join("install.sh").exists());
    // Its installer puts it under a prefix of the person's choosing.
    let prefix = dir.path().join("prefix");
    let i = Command::new("bash")
        .arg(top.join("install.sh"))
        .arg(&prefix)
        .output()
        .unwrap();
    assert!(i.status.success(), "{}", String::from_utf8_lossy(&i.stderr));
    assert!(
        prefix
            .join("share/icons/hicolor/512x512/apps/thyme-studio.png")
            .exists()
    );
    runs_from(dir.path(), &prefix.join("bin/thyme-studio"));
}
