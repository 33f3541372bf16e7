//! `msmws sim`: the kernel model as a scriptable kernel (docs/sim-protocol.md). One JSON request
//! per stdin line, exactly one JSON result line per request, in order; the requests themselves
//! are answered by [`session::Session`].
//!
//! Owns: the stdin/stdout loop. Single-threaded.

use std::io::{BufRead, Write};

mod session;
use session::Session;

/// `msmws sim [--profile NAME] [--vm-log-shift N]`.
pub fn run(args: &[String]) -> Result<(), String> {
    let a = super::parse(args, &["--profile", "--vm-log-shift"], &[])?;
    if let Some(p) = a.positional.first() {
        return Err(format!("unexpected argument {p}"));
    }
    let shift = match a.value("--vm-log-shift") {
        Some(s) => s
            .parse::<u32>()
            .map_err(|_| format!("--vm-log-shift: \"{s}\" is not a number"))?,
        None => 0,
    };
    let mut session = Session::new(a.value("--profile").unwrap_or("a750"), shift)?;
    let stdin = std::io::stdin();
    let mut stdout = std::io::stdout().lock();
    for line in stdin.lock().lines() {
        let line = line.map_err(|e| format!("reading stdin: {e}"))?;
        if line.trim().is_empty() {
            continue;
        }
        writeln!(stdout, "{}", session.line(&line)).map_err(|e| e.to_string())?;
        stdout.flush().map_err(|e| e.to_string())?;
    }
    // The client is gone: whatever it still held goes with the file, as when a process exits.
    session.close();
    Ok(())
}
