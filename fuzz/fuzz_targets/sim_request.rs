//! Fuzz target of the `msmws sim` request parser (docs/sim-protocol.md): any bytes, read as request
//! lines, must each get one result object (never a panic, whatever the JSON, the numbers or the
//! order of the requests), and the session must end with every fd it handed out closed.
//!
//! Input: the first byte picks the chip profile; the rest is split into lines as stdin would be.
//! The session is the command's own code (src/bin/msmws/sim/session.rs), compiled in here.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../../src/bin/msmws/sim/session.rs"]
#[allow(dead_code)]
mod session;

/// Enough requests to make, bind, submit, run and close; more only slows the fuzzer down.
const MAX_LINES: usize = 48;

fuzz_target!(|data: &[u8]| {
    let Some((&pick, rest)) = data.split_first() else {
        return;
    };
    let profile = ["a750", "a660", "a618"][usize::from(pick % 3)];
    let mut s = session::Session::new(profile, u32::from(pick >> 6)).expect("a known profile");
    for line in rest.split(|&b| b == b'\n').take(MAX_LINES) {
        let Ok(line) = std::str::from_utf8(line) else {
            continue;
        };
        if line.trim().is_empty() {
            continue;
        }
        let v = s.line(line);
        assert!(
            v["ok"].is_boolean(),
            "every request gets ok: true|false: {v}"
        );
        if v["ok"] == false {
            assert!(v["errno"].is_string(), "a failure names its errno: {v}");
        }
    }
    let report = s.close();
    // The session owns every sync-file fd it handed out and closes them before the file: the
    // model must not count one as still open.
    assert!(report.open_fds.is_empty(), "{:?}", report.open_fds);
});
