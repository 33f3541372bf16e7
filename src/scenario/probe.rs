//! Scenario `probe`: the device probe of every chip profile on the kernel model, checked against
//! spec/kernel.md's chip table (VA range, PRR, mode).
//!
//! Locks: none of its own.

use serde_json::json;

use super::{Effort, Outcome};
use crate::sim::PROFILES;
use crate::{Device, VmMode};

pub fn run(_effort: Effort) -> Outcome {
    let headers = [
        "profile", "uapi", "chip_id", "va_start", "va_size", "prr", "mode", "check",
    ];
    let mut rows = vec![];
    let mut json_rows = vec![];
    let mut passed = true;
    for p in PROFILES {
        let (row, ok, j) = match Device::new_sim(p.name) {
            Ok(dev) => {
                let i = dev.info();
                let has_prr = dev.extras().is_ok_and(|e| e.has_prr);
                // What spec/kernel.md says each profile must show.
                let ok = i.va_start == 0x1_0000_0000
                    && i.va_size_B == p.va_size_B()
                    && has_prr == p.has_prr
                    && i.mode == VmMode::VmBind
                    && i.chip_id == p.chip_id_param();
                let row = vec![
                    p.name.to_string(),
                    format!("{}.{}.{}", i.uapi_major, i.uapi_minor, i.uapi_patchlevel),
                    format!("{:#x}", i.chip_id),
                    format!("{:#x}", i.va_start),
                    format!("{:#x}", i.va_size_B),
                    if has_prr { "yes" } else { "no" }.to_string(),
                    i.mode.name().to_string(),
                    if ok { "ok" } else { "MISMATCH" }.to_string(),
                ];
                let j = json!({"profile": p.name, "chip_id": i.chip_id, "va_start": i.va_start,
                    "va_size_B": i.va_size_B, "has_prr": has_prr, "mode": i.mode.name(), "ok": ok});
                (row, ok, j)
            }
            Err(e) => {
                let row = vec![
                    p.name.to_string(),
                    "-".into(),
                    "-".into(),
                    "-".into(),
                    "-".into(),
                    "-".into(),
                    "-".into(),
                    format!("error: {e}"),
                ];
                (
                    row,
                    false,
                    json!({"profile": p.name, "error": e.to_string(), "ok": false}),
                )
            }
        };
        passed &= ok;
        rows.push(row);
        json_rows.push(j);
    }
    let summary = format!(
        "{} profiles probed through the raw ioctl boundary; {}",
        PROFILES.len(),
        if passed {
            "all match spec/kernel.md"
        } else {
            "MISMATCH against spec/kernel.md"
        }
    );
    Outcome {
        name: "probe",
        summary,
        passed,
        headers: headers.iter().map(|s| s.to_string()).collect(),
        rows,
        json: json!({"scenario": "probe", "passed": passed, "profiles": json_rows}),
    }
}
