//! Records what `GET /identity/version` reports: the git tag and commit, and the build date.
//! Outside a git checkout (a Docker build) they come from SOURCE_GIT_SHA, SOURCE_GIT_TAG and
//! SOURCE_DATE_EPOCH, or say "unknown".

use std::process::Command;

fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git").args(args).output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
        .filter(|s| !s.is_empty())
}

fn main() {
    let sha = std::env::var("SOURCE_GIT_SHA")
        .ok()
        .or_else(|| git(&["rev-parse", "--short=8", "HEAD"]))
        .unwrap_or_else(|| "unknown".into());
    let tag = std::env::var("SOURCE_GIT_TAG")
        .ok()
        .or_else(|| git(&["describe", "--tags", "--abbrev=0"]))
        .unwrap_or_else(|| {
            format!(
                "v{}",
                std::env::var("CARGO_PKG_VERSION").unwrap_or_default()
            )
        });
    let date = std::env::var("SOURCE_DATE_EPOCH")
        .ok()
        .and_then(|s| s.parse::<i64>().ok())
        .or_else(|| git(&["log", "-1", "--format=%ct"]).and_then(|s| s.parse().ok()))
        .unwrap_or(0);
    println!("cargo:rustc-env=BUILD_GIT_SHA={sha}");
    println!("cargo:rustc-env=BUILD_GIT_TAG={tag}");
    println!("cargo:rustc-env=BUILD_EPOCH={date}");
    println!("cargo:rerun-if-changed=.git/HEAD");
    println!("cargo:rerun-if-changed=.git/refs");
    println!("cargo:rerun-if-env-changed=SOURCE_GIT_SHA");
    println!("cargo:rerun-if-env-changed=SOURCE_GIT_TAG");
    println!("cargo:rerun-if-env-changed=SOURCE_DATE_EPOCH");
}
