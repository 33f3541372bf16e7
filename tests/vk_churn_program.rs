//! `mesa/programs/vk_churn.c`, the Vulkan workload the turnip measurements run (docs/mesa.md),
//! builds warning-free and runs both workloads to completion on lavapipe, the real Vulkan driver
//! these machines have, so a broken program is caught here and not in a Mesa run.

use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;

/// Builds the program once per test binary (the tests run in parallel).
fn build() -> PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(compile).clone()
}

fn compile() -> PathBuf {
    let out = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("vk_churn");
    let src = concat!(env!("CARGO_MANIFEST_DIR"), "/mesa/programs/vk_churn.c");
    let cc = Command::new("cc")
        .args(["-std=c11", "-O1", "-Wall", "-Wextra", "-Werror", "-o"])
        .arg(&out)
        .arg(src)
        .arg("-lvulkan")
        .output()
        .expect("run cc");
    assert!(
        cc.status.success(),
        "cc failed (ci/test installs libvulkan-dev):\n{}",
        String::from_utf8_lossy(&cc.stderr)
    );
    out
}

fn run(bin: &PathBuf, args: &[&str]) -> serde_json::Value {
    let out = Command::new(bin).args(args).output().expect("run vk_churn");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "vk_churn {args:?}: {stderr}");
    serde_json::from_slice(&out.stdout).expect("one JSON object")
}

#[test]
fn vk_churn_runs_both_workloads_on_lavapipe() {
    let bin = build();
    let v = run(&bin, &["churn", "3", "50"]);
    assert_eq!(v["workload"], "churn");
    assert_eq!(v["buffers_per_frame"], 50);
    let v = run(&bin, &["alloc", "200", "500"]);
    assert_eq!(v["live"], 200);
    assert_eq!(v["pairs"], 500);
}

#[test]
fn vk_churn_refuses_bad_arguments() {
    let bin = build();
    for args in [
        &["churn", "3"][..],
        &["churn", "x", "1"],
        &["frob", "1", "1"],
    ] {
        let out = Command::new(&bin)
            .args(args)
            .output()
            .expect("run vk_churn");
        assert_eq!(out.status.code(), Some(2), "{args:?}");
    }
}
