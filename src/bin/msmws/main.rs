//! `msmws`: probe a device, and run the scenarios on the embedded kernel model.
//!
//! ```text
//! msmws info [--device PATH | --sim PROFILE] [--json]
//! msmws scenario (all | NAME ...) [--json] [--quick] [--check]
//! msmws sim [--profile NAME] [--vm-log-shift N]
//! ```

use std::path::PathBuf;
use std::process::ExitCode;

use msm_winsys::scenario::{self, Effort};
use msm_winsys::sim::LeakCheck;
use msm_winsys::{Device, DeviceError, DeviceExtras, DeviceInfo};
use serde_json::json;

mod sim;

const USAGE: &str = "\
usage:
  msmws info [--device PATH | --sim PROFILE] [--json]
      Probe an msm device (default: the first msm render node) or the kernel model
      (PROFILE: a618, a660, a750) and print what it is and which VM mode the winsys uses.
  msmws scenario (all | NAME...) [--json] [--quick] [--check]
      Run scenarios on the embedded kernel model and print their tables (--json: one
      object per scenario per line). --quick runs a smoke-sized version. The summary says
      which goals held; --check also makes the exit status non-zero when one did not.
      A scenario whose model files were dropped still holding objects fails with a LEAK
      line and makes the exit status non-zero.
  msmws scenario list
      List the scenarios.
  msmws sim [--profile PROFILE] [--vm-log-shift N]
      The kernel model as a scriptable kernel: one JSON request per stdin line, one JSON
      result per line on stdout (docs/sim-protocol.md).";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("info") => info(&args[1..]),
        Some("scenario") => run_scenarios(&args[1..]),
        Some("sim") => sim::run(&args[1..]),
        Some("-h" | "--help" | "help") => {
            println!("{USAGE}");
            Ok(())
        }
        _ => Err(format!("expected a command\n{USAGE}")),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(msg) => {
            eprintln!("msmws: {msg}");
            ExitCode::FAILURE
        }
    }
}

/// Splits `--flag` switches from positional arguments, taking a value for the flags in `valued`.
struct Args {
    flags: Vec<(String, Option<String>)>,
    positional: Vec<String>,
}

fn parse(args: &[String], valued: &[&str], switches: &[&str]) -> Result<Args, String> {
    let mut out = Args {
        flags: vec![],
        positional: vec![],
    };
    let mut it = args.iter();
    while let Some(a) = it.next() {
        if valued.contains(&a.as_str()) {
            let v = it.next().ok_or_else(|| format!("{a} needs a value"))?;
            out.flags.push((a.clone(), Some(v.clone())));
        } else if switches.contains(&a.as_str()) {
            out.flags.push((a.clone(), None));
        } else if a.starts_with('-') {
            return Err(format!("unknown option {a}\n{USAGE}"));
        } else {
            out.positional.push(a.clone());
        }
    }
    Ok(out)
}

impl Args {
    fn has(&self, flag: &str) -> bool {
        self.flags.iter().any(|(f, _)| f == flag)
    }

    fn value(&self, flag: &str) -> Option<&str> {
        self.flags
            .iter()
            .find(|(f, _)| f == flag)
            .and_then(|(_, v)| v.as_deref())
    }
}

fn info(args: &[String]) -> Result<(), String> {
    let a = parse(args, &["--device", "--sim"], &["--json"])?;
    if let Some(p) = a.positional.first() {
        return Err(format!("unexpected argument {p}\n{USAGE}"));
    }
    let dev = match (a.value("--device"), a.value("--sim")) {
        (Some(_), Some(_)) => return Err("--device and --sim exclude each other".into()),
        (Some(path), None) => Device::open_path(&PathBuf::from(path)),
        (None, Some(profile)) => Device::new_sim(profile),
        (None, None) => Device::open_default(),
    }
    .map_err(|e: DeviceError| e.to_string())?;
    let i = dev.info();
    let x = dev.extras().map_err(|e| e.to_string())?;
    if a.has("--json") {
        println!("{}", info_json(i, &x));
    } else {
        print!("{}", info_text(i, &x));
    }
    Ok(())
}

fn info_json(i: &DeviceInfo, x: &DeviceExtras) -> serde_json::Value {
    json!({
        "source": i.source,
        "uapi": format!("{}.{}.{}", i.uapi_major, i.uapi_minor, i.uapi_patchlevel),
        "chip": i.chip_name,
        "gpu_id": i.gpu_id,
        "chip_id": format!("{:#x}", i.chip_id),
        "gmem_size_B": i.gmem_size_B,
        "gmem_base": i.gmem_base,
        "max_freq_Hz": x.max_freq_Hz,
        "priorities": i.priorities,
        "va_start": i.va_start,
        "va_size_B": i.va_size_B,
        "has_prr": x.has_prr,
        "raytracing": i.raytracing,
        "highest_bank_bit": i.highest_bank_bit,
        "ubwc_swizzle": i.ubwc_swizzle,
        "macrotile_mode": i.macrotile_mode,
        "uche_trap_base": x.uche_trap_base,
        "timeline_syncobjs": x.timeline_syncobjs,
        "mode": i.mode.name(),
        "mode_reason": i.mode_reason,
    })
}

/// `4 GiB`, `256 TiB - 4 GiB`: sizes as people say them.
fn human_size(b: u64) -> String {
    const GIB: u64 = 1 << 30;
    const TIB: u64 = 1 << 40;
    match b {
        0 => "0".into(),
        b if b % TIB == 0 => format!("{} TiB", b / TIB),
        b if b % GIB == 0 && b > TIB => {
            format!("{} TiB - {} GiB", b / TIB + 1, (TIB - b % TIB) / GIB)
        }
        b if b % GIB == 0 => format!("{} GiB", b / GIB),
        b if b % (1 << 20) == 0 => format!("{} MiB", b >> 20),
        b if b % 1024 == 0 => format!("{} KiB", b >> 10),
        b => format!("{b} B"),
    }
}

fn info_text(i: &DeviceInfo, x: &DeviceExtras) -> String {
    let yes = |b: bool| if b { "yes" } else { "no" };
    let va = if i.va_size_B == 0 {
        "kernel-managed".to_string()
    } else {
        format!(
            "{:#x} + {} ({:#x}..{:#x})",
            i.va_start,
            human_size(i.va_size_B),
            i.va_start,
            i.va_start.wrapping_add(i.va_size_B)
        )
    };
    let rows = [
        ("device", i.source.clone()),
        (
            "uapi",
            format!("{}.{}.{}", i.uapi_major, i.uapi_minor, i.uapi_patchlevel),
        ),
        (
            "chip",
            format!(
                "{} (gpu_id {}, chip_id {:#x})",
                i.chip_name, i.gpu_id, i.chip_id
            ),
        ),
        (
            "gmem",
            format!("{} at {:#x}", human_size(i.gmem_size_B), i.gmem_base),
        ),
        ("max freq", format!("{} MHz", x.max_freq_Hz / 1_000_000)),
        ("priorities", i.priorities.to_string()),
        ("va", va),
        ("prr", yes(x.has_prr).into()),
        ("raytracing", yes(i.raytracing).into()),
        (
            "ubwc",
            format!(
                "highest bank bit {}, swizzle {}, macrotile mode {}",
                i.highest_bank_bit, i.ubwc_swizzle, i.macrotile_mode
            ),
        ),
        ("uche trap base", format!("{:#x}", x.uche_trap_base)),
        ("timeline syncobjs", yes(x.timeline_syncobjs).into()),
        ("mode", format!("{} ({})", i.mode.name(), i.mode_reason)),
    ];
    rows.iter().map(|(k, v)| format!("{k:<18} {v}\n")).collect()
}

fn run_scenarios(args: &[String]) -> Result<(), String> {
    let a = parse(args, &[], &["--json", "--quick", "--check"])?;
    if a.positional.is_empty() {
        return Err(format!("name a scenario or `all`\n{USAGE}"));
    }
    if a.positional == ["list"] {
        for s in scenario::ALL {
            println!("{:<10} {}", s.name, s.about);
        }
        return Ok(());
    }
    let chosen: Vec<&scenario::Scenario> = if a.positional == ["all"] {
        scenario::ALL.iter().collect()
    } else {
        a.positional
            .iter()
            .map(|n| {
                scenario::find(n)
                    .ok_or_else(|| format!("unknown scenario {n} (try `msmws scenario list`)"))
            })
            .collect::<Result<_, _>>()?
    };
    let effort = if a.has("--quick") {
        Effort::Quick
    } else {
        Effort::Full
    };
    // Leaks are this command's own check (a failed row and a non-zero exit), not a panic: the
    // repository's cargo config sets MSMWS_SIM_LEAK_CHECK=panic for its tests, and `cargo run`
    // passes it on.
    msm_winsys::sim::set_leak_check(LeakCheck::Record);
    let mut failed = vec![];
    let mut leaked = vec![];
    let mut summary = vec![];
    for s in chosen {
        let mut o = (s.run)(effort);
        let leaks = msm_winsys::sim::take_recorded_leaks();
        if !leaks.is_empty() {
            let what: Vec<String> = leaks
                .iter()
                .map(|(id, r)| format!("model file {id} dropped holding {}", r.summary()))
                .collect();
            o.passed = false;
            o.summary = format!("LEAK: {}; {}", what.join("; "), o.summary);
            leaked.push(o.name);
        }
        if a.has("--json") {
            println!("{}", o.json);
        } else {
            println!("== scenario {}: {}", o.name, s.about);
            print!("{}", scenario::render_table(&o.headers, &o.rows));
            println!("{}\n", o.summary);
        }
        summary.push(vec![
            o.name.to_string(),
            if o.passed { "pass" } else { "FAIL" }.to_string(),
            o.summary.clone(),
        ]);
        if !o.passed {
            failed.push(o.name);
        }
    }
    if !a.has("--json") && summary.len() > 1 {
        println!("== summary");
        print!(
            "{}",
            scenario::render_table(
                &["scenario".into(), "result".into(), "summary".into()],
                &summary
            )
        );
    }
    if !leaked.is_empty() {
        return Err(format!(
            "scenarios leaked model objects: {}",
            leaked.join(", ")
        ));
    }
    if failed.is_empty() || !a.has("--check") {
        if !failed.is_empty() && !a.has("--json") {
            println!(
                "goals not met: {} (see their rows and the closing notes)",
                failed.join(", ")
            );
        }
        Ok(())
    } else {
        Err(format!("scenario goals not met: {}", failed.join(", ")))
    }
}
