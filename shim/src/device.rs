//! The one model device of this process: chip profile, model options and fault injection rules
//! from the environment, the device made (with the rules applied) on the first open of a node.
//!
//! Owns: the configuration (parsed once) and the `Sim`. Locks: the two `OnceLock`s only; making
//! the device runs no hook that could come back here (its own file operations are on other paths
//! and fds).

use std::sync::OnceLock;

use msm_winsys::sim::{ioctl_name, Injection, Sim, SimOptions};
use msm_winsys::Errno;

/// Chip profile: `a750` (default), `a660`, `a618`.
pub const PROFILE_ENV: &str = "MSMWS_SHIM_PROFILE";
/// Comma-separated model options (see [`parse_options`]).
pub const OPTIONS_ENV: &str = "MSMWS_SHIM_OPTIONS";
/// Comma-separated fault injection rules (see [`parse_injections`]).
pub const INJECT_ENV: &str = "MSMWS_SHIM_INJECT";

/// What the environment asked for.
#[derive(Debug, Clone)]
pub struct Config {
    pub profile: String,
    /// The option words as given, for the report.
    pub words: Vec<String>,
    pub options: SimOptions,
    /// The fault injection rules, in the order given.
    pub inject: Vec<Injection>,
}

/// The model's inner injection points (`Injection`'s documentation), besides ioctl names and
/// `VM_BIND:op<N>`.
const INNER_POINTS: [&str; 5] = [
    "GEM_INFO:SET_METADATA",
    "GEM_INFO:GET_METADATA",
    "VM_BIND:pin",
    "VM_BIND:prealloc",
    "VM_BIND:job",
];

fn known_point(p: &str) -> bool {
    // Every ioctl number's low byte is its table index, so this walks the model's whole table.
    p == "*"
        || INNER_POINTS.contains(&p)
        || p.strip_prefix("VM_BIND:op")
            .is_some_and(|n| n.parse::<u32>().is_ok())
        || (0..=0xffu64).any(|nr| ioctl_name(nr) == Some(p))
}

/// The errno named `name` (`"EPIPE"`), as [`Errno::name`] spells it.
fn errno_named(name: &str) -> Option<Errno> {
    (1..4096).map(Errno).find(|e| e.name() == name)
}

/// Fault injection rules from their words, `POINT:NTH:ERRNO` each: POINT an ioctl name
/// (`GEM_SUBMIT`), `*` for any call, or an inner point (`VM_BIND:job`; the point may itself hold
/// a colon); NTH the 1-based hit that fails; ERRNO a name (`EPIPE`).
pub fn parse_injections(s: &str) -> Result<Vec<Injection>, String> {
    let mut rules = Vec::new();
    for w in s.split(',').map(str::trim).filter(|w| !w.is_empty()) {
        let bad = |why: &str| format!("{INJECT_ENV}: `{w}`: {why} (rules are POINT:NTH:ERRNO)");
        let mut parts = w.rsplitn(3, ':');
        let (Some(errno), Some(nth), Some(point)) = (parts.next(), parts.next(), parts.next())
        else {
            return Err(bad("not three fields"));
        };
        if !known_point(point) {
            return Err(bad(&format!("no injection point `{point}`")));
        }
        let nth = match nth.parse::<u32>() {
            Ok(n) if n > 0 => n,
            _ => return Err(bad(&format!("`{nth}` is not a count from 1"))),
        };
        let errno = errno_named(errno).ok_or_else(|| bad(&format!("no errno `{errno}`")))?;
        rules.push(Injection {
            point: point.to_string(),
            nth,
            errno,
        });
    }
    Ok(rules)
}

/// Model options from their words:
/// - `no-pp-pgtables`: no per-process page tables (one global VM; turnip takes its kernel-iova
///   path);
/// - `uapi-minor=N`: the UAPI minor version DRM_IOCTL_VERSION reports (6..=13);
/// - `no-vma-ref-fix`: the display VM without the `vma_ref` fix;
/// - `no-timeline-syncobjs`: DRM_CAP_SYNCOBJ_TIMELINE not advertised;
/// - `perfmon-capable`: the caller may set SYSPROF.
pub fn parse_options(s: &str) -> Result<(Vec<String>, SimOptions), String> {
    let mut o = SimOptions::default();
    let mut words = Vec::new();
    for w in s.split(',').map(str::trim).filter(|w| !w.is_empty()) {
        match w.split_once('=') {
            None if w == "no-pp-pgtables" => o.per_process_pgtables = false,
            None if w == "no-vma-ref-fix" => o.display_vma_ref_fix = false,
            None if w == "no-timeline-syncobjs" => o.timeline_syncobjs = false,
            None if w == "perfmon-capable" => o.perfmon_capable = true,
            Some(("uapi-minor", n)) => {
                o.uapi_minor = n
                    .parse()
                    .map_err(|_| format!("{OPTIONS_ENV}: `{w}`: not a number"))?;
            }
            _ => {
                return Err(format!(
                    "{OPTIONS_ENV}: unknown option `{w}` (known: no-pp-pgtables, uapi-minor=N, \
                     no-vma-ref-fix, no-timeline-syncobjs, perfmon-capable)"
                ))
            }
        }
        words.push(w.to_string());
    }
    Ok((words, o))
}

/// The configuration from the environment, read once.
pub fn config() -> &'static Result<Config, String> {
    static CONFIG: OnceLock<Result<Config, String>> = OnceLock::new();
    CONFIG.get_or_init(|| {
        let profile = std::env::var(PROFILE_ENV).unwrap_or_else(|_| "a750".into());
        let (words, options) = parse_options(&std::env::var(OPTIONS_ENV).unwrap_or_default())?;
        let inject = parse_injections(&std::env::var(INJECT_ENV).unwrap_or_default())?;
        Ok(Config {
            profile,
            words,
            options,
            inject,
        })
    })
}

static SIM: OnceLock<Result<Sim, String>> = OnceLock::new();

/// The model device, made on first use; the error says why it could not be made (printed once).
pub fn sim() -> Result<&'static Sim, &'static str> {
    SIM.get_or_init(|| {
        let r = config().as_ref().map_err(String::clone).and_then(|c| {
            let sim =
                Sim::with_options(&c.profile, c.options.clone()).map_err(|e| e.to_string())?;
            for rule in &c.inject {
                sim.inject(rule.clone());
            }
            Ok(sim)
        });
        if let Err(e) = &r {
            eprintln!("msmws-shim: no model device: {e}");
        }
        r
    })
    .as_ref()
    .map_err(String::as_str)
}

/// The model device if a program opened a node, or the reason it could not be made.
pub fn made() -> Option<Result<&'static Sim, &'static str>> {
    SIM.get().map(|r| r.as_ref().map_err(String::as_str))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn option_words_set_the_model_options() {
        let (w, o) = parse_options("no-pp-pgtables, uapi-minor=10,no-vma-ref-fix").unwrap();
        assert_eq!(w, ["no-pp-pgtables", "uapi-minor=10", "no-vma-ref-fix"]);
        assert!(!o.per_process_pgtables);
        assert_eq!(o.uapi_minor, 10);
        assert!(!o.display_vma_ref_fix);
        let (w, o) = parse_options("").unwrap();
        assert!(w.is_empty());
        assert_eq!(o, SimOptions::default());
        assert!(parse_options("uapi-minor=x").is_err());
        assert!(parse_options("fast")
            .unwrap_err()
            .contains("unknown option `fast`"));
    }

    #[test]
    fn injection_rules_name_a_point_a_count_and_an_errno() {
        let r = parse_injections("GEM_SUBMIT:3:EPIPE, *:120:ENOMEM,VM_BIND:job:1:ENOMEM").unwrap();
        let r: Vec<_> = r
            .iter()
            .map(|i| (i.point.as_str(), i.nth, i.errno))
            .collect();
        assert_eq!(
            r,
            [
                ("GEM_SUBMIT", 3, Errno::EPIPE),
                ("*", 120, Errno::ENOMEM),
                ("VM_BIND:job", 1, Errno::ENOMEM),
            ]
        );
        assert!(parse_injections("VM_BIND:op2:1:EINVAL").is_ok());
        assert!(parse_injections("").unwrap().is_empty());
        for (bad, why) in [
            ("GEM_SUBMIT:3", "not three fields"),
            ("GEM_SUMBIT:3:EPIPE", "no injection point `GEM_SUMBIT`"),
            ("GEM_SUBMIT:0:EPIPE", "`0` is not a count from 1"),
            ("GEM_SUBMIT:x:EPIPE", "`x` is not a count from 1"),
            ("GEM_SUBMIT:3:EPIPED", "no errno `EPIPED`"),
        ] {
            let e = parse_injections(bad).unwrap_err();
            assert!(e.contains(why) && e.contains(bad), "{bad}: {e}");
        }
    }
}
