//! The one model device of this process: chip profile and model options from the environment,
//! the device made on the first open of a node.
//!
//! Owns: the configuration (parsed once) and the `Sim`. Locks: the two `OnceLock`s only; making
//! the device runs no hook that could come back here (its own file operations are on other paths
//! and fds).

use std::sync::OnceLock;

use msm_winsys::sim::{Sim, SimOptions};

/// Chip profile: `a750` (default), `a660`, `a618`.
pub const PROFILE_ENV: &str = "MSMWS_SHIM_PROFILE";
/// Comma-separated model options (see [`parse_options`]).
pub const OPTIONS_ENV: &str = "MSMWS_SHIM_OPTIONS";

/// What the environment asked for.
#[derive(Debug, Clone)]
pub struct Config {
    pub profile: String,
    /// The option words as given, for the report.
    pub words: Vec<String>,
    pub options: SimOptions,
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
        Ok(Config {
            profile,
            words,
            options,
        })
    })
}

static SIM: OnceLock<Result<Sim, String>> = OnceLock::new();

/// The model device, made on first use; the error says why it could not be made (printed once).
pub fn sim() -> Result<&'static Sim, &'static str> {
    SIM.get_or_init(|| {
        let r = config().as_ref().map_err(String::clone).and_then(|c| {
            Sim::with_options(&c.profile, c.options.clone()).map_err(|e| e.to_string())
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
}
