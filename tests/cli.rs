//! The `msmws` command line, run as a user would.

use std::process::Command;

fn msmws(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_msmws"))
        .args(args)
        .output()
        .expect("run msmws");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into(),
        String::from_utf8_lossy(&out.stderr).into(),
    )
}

#[test]
fn info_sim_a618_shows_4gib_va_no_prr_vm_bind() {
    let (ok, out, _) = msmws(&["info", "--sim", "a618"]);
    assert!(ok);
    assert!(out.contains("0x100000000 + 4 GiB"), "{out}");
    assert!(
        out.lines()
            .any(|l| l.starts_with("prr") && l.ends_with("no")),
        "{out}"
    );
    assert!(out.contains("VM_BIND"), "{out}");
}

#[test]
fn info_sim_a750_json_shows_va_size_and_prr() {
    let (ok, out, _) = msmws(&["info", "--sim", "a750", "--json"]);
    assert!(ok);
    let v: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(v["va_size_B"], (1u64 << 48) - (4u64 << 30));
    assert_eq!(v["has_prr"], true);
    assert_eq!(v["mode"], "VM_BIND");
}

#[test]
fn info_on_a_non_msm_node_fails_with_a_sentence() {
    let (ok, _, err) = msmws(&["info", "--device", "/dev/null"]);
    assert!(!ok);
    assert!(
        err.contains("not a DRM device") && err.contains("ENODEV"),
        "{err}"
    );
    let (ok, _, err) = msmws(&["info", "--device", "/nonexistent/renderD128"]);
    assert!(!ok);
    assert!(
        err.contains("cannot open") && err.contains("ENOENT"),
        "{err}"
    );
}

#[test]
fn unknown_profile_and_bad_usage_fail_cleanly() {
    let (ok, _, err) = msmws(&["info", "--sim", "a999"]);
    assert!(!ok && err.contains("unknown chip profile"), "{err}");
    let (ok, _, err) = msmws(&["frobnicate"]);
    assert!(!ok && err.contains("usage"), "{err}");
}

#[test]
fn scenario_probe_json_passes() {
    let (ok, out, err) = msmws(&["scenario", "probe", "--json"]);
    assert!(ok, "{err}");
    let v: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(v["passed"], true);
}

#[test]
fn bind_scenarios_release_everything_under_the_panic_leak_check() {
    // The cargo config gives this process (and so msmws) MSMWS_SIM_LEAK_CHECK=panic, as `cargo
    // run` gives it to the README's main command: a leak was a 30 KB panic there.
    let (ok, out, err) = msmws(&["scenario", "bind-churn", "sparse", "--quick"]);
    assert!(ok, "{err}");
    assert!(!err.contains("panicked"), "{err}");
    // Only the leak check is asserted: the quick runs' timing goals depend on the machine's load.
    for name in ["bind-churn", "sparse"] {
        let row = out
            .lines()
            .find(|l| l.starts_with(name) && (l.contains(" pass ") || l.contains(" FAIL ")))
            .unwrap_or_else(|| panic!("no summary row for {name}: {out}"));
        assert!(row.contains("model leaks: none"), "{row}");
    }
}
