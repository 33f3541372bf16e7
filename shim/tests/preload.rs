//! The shim as programs meet it: a C program (tests/c/shim_probe.c) built with `cc` and run with
//! `LD_PRELOAD=libmsmws_shim.so`, then its exit report read back.
//!
//! The library is the one cargo built for this package's tests (it is also an rlib for that
//! reason: see Cargo.toml), in target/<profile>/deps/ next to the test executable.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use serde_json::Value;

fn shim_library() -> PathBuf {
    // The library as cargo built it for this test run: next to this executable in deps/ (cargo
    // copies it up to target/<profile>/ only for `cargo build`).
    let exe = std::env::current_exe().unwrap();
    let lib = exe.parent().unwrap().join("libmsmws_shim.so");
    assert!(lib.exists(), "{} not built", lib.display());
    lib
}

/// The probe program, built once per test run.
fn probe() -> &'static Path {
    static PROBE: OnceLock<PathBuf> = OnceLock::new();
    PROBE.get_or_init(|| {
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/c/shim_probe.c");
        let out = Path::new(env!("CARGO_TARGET_TMPDIR")).join("shim_probe");
        let st = Command::new("cc")
            .args(["-O1", "-g", "-Wall", "-Werror", "-D_FORTIFY_SOURCE=2"])
            .arg("-I/usr/include/libdrm")
            .arg(&src)
            .arg("-o")
            .arg(&out)
            .arg("-ldrm")
            .status()
            .expect("cc runs");
        assert!(st.success(), "cc {} failed", src.display());
        out
    })
}

struct Run {
    status: i32,
    stderr: String,
    report: Value,
}

/// Runs `program` with the shim preloaded and reads its report back.
fn run_with(program: &Path, args: &[&str], env: &[(&str, &str)]) -> (Run, String) {
    let tag = program.file_name().unwrap().to_str().unwrap();
    let report_path =
        Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("shim-report-{tag}-%p.json"));
    let mut cmd = Command::new(program);
    cmd.args(args)
        .env("LD_PRELOAD", shim_library())
        .env("MSMWS_SHIM_REPORT", &report_path)
        .env_remove("MSMWS_SHIM_PROFILE")
        .env_remove("MSMWS_SHIM_OPTIONS")
        .env_remove("MSMWS_SHIM_INJECT");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let child = cmd
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let out = child.wait_with_output().unwrap();
    let path = report_path
        .to_str()
        .unwrap()
        .replace("%p", &pid.to_string());
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("report {path}: {e}"));
    std::fs::remove_file(&path).unwrap();
    let run = Run {
        status: out.status.code().unwrap_or(-1),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        report: serde_json::from_str(&text).unwrap(),
    };
    (run, String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The probe program in `mode` (see tests/c/shim_probe.c).
fn run(mode: &str, env: &[(&str, &str)]) -> Run {
    run_with(probe(), &[mode], env).0
}

fn count(r: &Value, ioctl: &str) -> u64 {
    r["ioctls"][ioctl]["count"].as_u64().unwrap_or(0)
}

#[test]
fn a_program_using_the_render_node_runs_on_the_model_and_its_report_is_clean() {
    let r = run("clean", &[]);
    assert_eq!(r.status, 0, "{}", r.stderr);
    let rep = &r.report;
    assert_eq!(rep["clean"], true, "{rep:#}");
    assert_eq!(rep["profile"], "a750");
    assert_eq!(rep["unanswered"], serde_json::json!([]));
    assert_eq!(count(rep, "GEM_NEW"), 1);
    assert_eq!(count(rep, "GEM_CLOSE"), 1);
    assert_eq!(count(rep, "PRIME_HANDLE_TO_FD"), 1);
    assert_eq!(
        count(rep, "VERSION"),
        4,
        "three on the render file, one on card0"
    );
    assert_eq!(rep["ioctls"]["GET_PARAM"]["errors"]["EINVAL"], 1);
    assert_eq!(rep["mmaps"]["count"], 4);
    assert_eq!(rep["mmaps"]["errors"]["EINVAL"], 2);
    // The render file (closed through its fourth fd, 90), a read-only render file and card0,
    // all closed by the program with nothing left.
    let files = rep["files"].as_array().unwrap();
    assert_eq!(files.len(), 3, "{rep:#}");
    assert_eq!(files.iter().filter(|f| f["node"] == "render").count(), 2);
    assert!(files
        .iter()
        .all(|f| f["closed_by"] == "program" && f["leaked"] == false));
}

#[test]
fn an_ioctl_the_model_has_no_handler_for_is_reported_unanswered() {
    let r = run("unknown", &[]);
    assert_eq!(r.status, 0, "{}", r.stderr);
    let rep = &r.report;
    // The sync-file and dma-buf ioctls on the model's own fds reach the model.
    assert_eq!(
        rep["ioctls"]["DMA_BUF_IOCTL_EXPORT_SYNC_FILE"]["count"], 1,
        "{rep:#}"
    );
    assert_eq!(rep["ioctls"]["SYNC_IOC_FILE_INFO"]["count"], 2);
    assert_eq!(rep["ioctls"]["SYNC_IOC_FILE_INFO"]["errors"]["EINVAL"], 1);
    assert_eq!(rep["clean"], false);
    assert_eq!(
        rep["unanswered"],
        serde_json::json!([
            {"ioctl": "DMA_BUF_SET_NAME on a dma-buf/sync-file fd (0x40086201)", "count": 1},
            {"ioctl": "MSM_0x09 (0xc0086449)", "count": 1},
        ])
    );
}

#[test]
fn closing_the_device_while_holding_a_buffer_is_a_leak() {
    let r = run("leak", &[]);
    assert_eq!(r.status, 0, "{}", r.stderr);
    let rep = &r.report;
    assert_eq!(rep["clean"], false);
    let render = &rep["files"][0];
    assert_eq!(render["closed_by"], "program");
    assert_eq!(render["leaked"], true);
    assert_eq!(render["leaks"]["handles"], serde_json::json!([1]));
}

#[test]
fn a_file_left_open_at_exit_is_closed_by_the_shim_and_is_not_a_leak() {
    let r = run("exit-open", &[]);
    assert_eq!(r.status, 0, "{}", r.stderr);
    let rep = &r.report;
    assert_eq!(rep["clean"], true, "{rep:#}");
    let files = rep["files"].as_array().unwrap();
    let render = files.iter().find(|f| f["closed_by"] == "exit").unwrap();
    assert_eq!(render["node"], "render");
    assert_eq!(render["leaks"]["handles"].as_array().unwrap().len(), 1);
}

#[test]
fn a_page_flip_event_is_polled_and_read_through_libdrm() {
    let r = run("flip", &[]);
    assert_eq!(r.status, 0, "{}", r.stderr);
    let rep = &r.report;
    assert_eq!(rep["clean"], true, "{rep:#}");
    assert_eq!(rep["ioctls"]["MODE_PAGE_FLIP"]["count"], 1);
    assert_eq!(rep["ioctls"]["MODE_SETCRTC"]["count"], 2);
    assert_eq!(rep["files"][0]["node"], "primary");
}

#[test]
fn sharing_events_carry_the_object_and_the_decoded_record_and_can_go_to_stderr() {
    let r = run("share", &[("MSMWS_SHIM_TRACE", "metadata")]);
    assert_eq!(r.status, 0, "{}", r.stderr);
    let rep = &r.report;
    assert_eq!(rep["clean"], true, "{rep:#}");
    let ev = rep["sharing"]["events"].as_array().unwrap();
    let ops: Vec<&str> = ev.iter().map(|e| e["op"].as_str().unwrap()).collect();
    assert_eq!(
        ops,
        [
            "set-metadata",
            "export",
            "import",
            "get-metadata-length",
            "get-metadata"
        ]
    );
    // One object seen from two files.
    assert!(ev.iter().all(|e| e["object"] == ev[0]["object"]), "{ev:#?}");
    assert_ne!(ev[0]["file"], ev[2]["file"]);
    let tiled3 = serde_json::json!({"form": "modifier-only", "modifier": "0x500000000000003"});
    assert_eq!(ev[0]["record"], tiled3);
    assert_eq!(ev[3]["len"], 8);
    assert_eq!(ev[4]["record"], tiled3);
    // The same events on stderr, in order, as they happened.
    let traced: Vec<&str> = r
        .stderr
        .lines()
        .filter_map(|l| l.strip_prefix("msmws-shim-event: "))
        .collect();
    assert_eq!(traced.len(), 5, "{}", r.stderr);
    let first: serde_json::Value = serde_json::from_str(traced[0]).unwrap();
    assert_eq!(first, ev[0]);
}

#[test]
fn profile_and_options_come_from_the_environment() {
    // GET_PARAM(CHIP_ID) is checked against a750's: another profile fails that check, after the
    // model device was made with the profile and options asked for.
    let r = run(
        "clean",
        &[
            ("MSMWS_SHIM_PROFILE", "a660"),
            ("MSMWS_SHIM_OPTIONS", "no-pp-pgtables,uapi-minor=12"),
        ],
    );
    assert_eq!(r.status, 1);
    assert!(r.stderr.contains("0x43051401"), "{}", r.stderr);
    assert_eq!(r.report["profile"], "a660");
    assert_eq!(
        r.report["options"],
        serde_json::json!(["no-pp-pgtables", "uapi-minor=12"])
    );

    let r = run("clean", &[("MSMWS_SHIM_OPTIONS", "turbo")]);
    assert_eq!(r.status, 1, "open fails with ENODEV");
    assert!(r.stderr.contains("unknown option `turbo`"), "{}", r.stderr);
    assert_eq!(r.report["clean"], false);
    assert!(r.report["error"].as_str().unwrap().contains("turbo"));
}

#[test]
fn an_injected_fault_fails_the_nth_call_and_the_report_says_it_fired() {
    // The probe's first GET_PARAM (CHIP_ID) fails as msm_ioctl_get_param would if interrupted;
    // the probe has no submit, so that rule never fires.
    let r = run(
        "clean",
        &[("MSMWS_SHIM_INJECT", "GET_PARAM:1:EINTR,GEM_SUBMIT:1:EPIPE")],
    );
    assert_eq!(r.status, 1, "the probe checks GET_PARAM: {}", r.stderr);
    assert!(r.stderr.contains("DRM_IOCTL_MSM_GET_PARAM"), "{}", r.stderr);
    assert_eq!(r.report["ioctls"]["GET_PARAM"]["errors"]["EINTR"], 1);
    assert_eq!(
        r.report["injections"],
        serde_json::json!([
            {"rule": "GET_PARAM:1:EINTR", "hits": 1, "fired": true},
            {"rule": "GEM_SUBMIT:1:EPIPE", "hits": 0, "fired": false},
        ])
    );
}

#[test]
fn a_bad_injection_rule_makes_the_device_fail_to_open_and_says_why() {
    let r = run(
        "clean",
        &[("MSMWS_SHIM_INJECT", "GEM_SUBMIT:3:EPIPE,GEM_SUMBIT:1:EIO")],
    );
    assert_eq!(r.status, 1, "open fails with ENODEV");
    let error = r.report["error"].as_str().unwrap();
    assert!(
        error.contains("MSMWS_SHIM_INJECT: `GEM_SUMBIT:1:EIO`: no injection point `GEM_SUMBIT`"),
        "{error}"
    );
    assert!(r.stderr.contains("GEM_SUMBIT"), "{}", r.stderr);
    assert_eq!(r.report["clean"], false);
}

/// Runs an installed program (libdrm-tests' drmdevice, modetest) under the shim; `None` (and a
/// message) when it is not installed: ci/test installs it.
fn run_program(program: &str, args: &[&str]) -> Option<(Run, String)> {
    if !Path::new(program).exists() {
        eprintln!("skipped: {program} is not installed (Debian's libdrm-tests)");
        return None;
    }
    Some(run_with(Path::new(program), args, &[]))
}

#[test]
fn libdrm_enumerates_the_model_as_a_platform_device_with_both_nodes() {
    let Some((r, stdout)) = run_program("/usr/bin/drmdevice", &[]) else {
        return;
    };
    assert_eq!(r.status, 0, "{}", r.stderr);
    assert!(stdout.contains("--- Devices reported 1 ---"), "{stdout}");
    for line in [
        "available_nodes 0x05",
        "nodes[0] /dev/dri/card0",
        "nodes[2] /dev/dri/renderD128",
        "platform",
        "fullname\t/soc@0/gpu@3d00000",
        "qcom,adreno-43051401",
    ] {
        assert!(stdout.contains(line), "no `{line}` in:\n{stdout}");
    }
    assert_eq!(r.report["clean"], true, "{:#}", r.report);
    assert_eq!(r.report["files"].as_array().unwrap().len(), 2);
}

#[test]
fn libdrm_opens_the_device_by_driver_name() {
    // drmOpen("msm") walks the minors and asks each one's DRM_IOCTL_VERSION for its name.
    let Some((r, _)) = run_program("/usr/bin/modetest", &["-M", "msm", "-c"]) else {
        return;
    };
    assert!(r.report["ioctls"]["VERSION"]["count"].as_u64().unwrap() >= 1);
    assert_eq!(r.report["files"][0]["node"], "primary");
    assert!(!r.stderr.contains("failed to open device"), "{}", r.stderr);
}
