//! Scenario `compositor`: a client renders into 3 exported 1080p buffers; a compositor on another
//! device imports them, makes framebuffers and flips them for 600 frames. Matrix: {kernel before
//! the display `vma_ref` fix, fixed kernel} x {a naive compositor that closes the GEM handle right
//! after ADDFB2 and re-imports each time a buffer comes back, the msm-winsys flip chain}.
//! Reports display-VM maps and unmaps per steady-state flip and the modelled TLB-invalidation
//! milliseconds per flip (5 ms per 1080p unmap).
//!
//! Locks: none of its own.

use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::sync::Arc;

use serde_json::json;

use super::{Effort, Outcome};
use crate::bo::{Bo, BoFlags, FbLayout, FlipChain, DRM_FORMAT_XRGB8888};
use crate::kernel::ioctl;
use crate::sim::display::{BYTES_1080P, CRTC_ID};
use crate::sim::{DisplayStats, Sim, SimOptions};
use crate::{Device, ProbeOptions};

const BUFFERS: usize = 3;
/// A 1080p XRGB8888 scanout buffer: what covers the model's mode.
pub const LAYOUT: FbLayout = FbLayout {
    width: 1920,
    height: 1080,
    fourcc: DRM_FORMAT_XRGB8888,
    pitch_B: 1920 * 4,
    offset_B: 0,
};

#[derive(Clone, Copy, PartialEq, Eq)]
enum Compositor {
    Naive,
    FlipChain,
}

impl Compositor {
    fn name(self) -> &'static str {
        match self {
            Compositor::Naive => "naive (close after ADDFB2, re-import)",
            Compositor::FlipChain => "msm-winsys flip chain",
        }
    }
}

struct Run {
    steady: DisplayStats,
    flips: u64,
    ioctls_per_flip: f64,
}

fn err(e: impl std::fmt::Display) -> String {
    e.to_string()
}

/// Runs `frames` frames; the first `BUFFERS` are the warm-up (each buffer's first map).
fn run_one(fix: bool, who: Compositor, frames: usize) -> Result<Run, String> {
    let client = Arc::new(Device::new_sim("a750").map_err(err)?);
    let comp_sim = Sim::with_options(
        "a750",
        SimOptions {
            display_vma_ref_fix: fix,
            // The compositor flips back to back without waiting for flip events.
            vblank: crate::sim::VblankClock::Immediate,
            ..Default::default()
        },
    )
    .map_err(err)?;
    let comp = Arc::new(
        Device::new(
            Box::new(comp_sim.open_node(crate::sim::Node::Primary).map_err(err)?),
            ProbeOptions::default(),
        )
        .map_err(err)?,
    );

    // The client's swapchain: 3 shared scanout buffers and one dma-buf fd each, kept until the end.
    let flags = BoFlags::WC | BoFlags::SCANOUT | BoFlags::SHARED;
    let bufs: Vec<Bo> = (0..BUFFERS)
        .map(|_| Bo::new(&client, BYTES_1080P, flags))
        .collect::<Result<_, _>>()
        .map_err(err)?;
    let fds: Vec<OwnedFd> = bufs
        .iter()
        .map(Bo::export_dmabuf)
        .collect::<Result<_, _>>()
        .map_err(err)?;

    let k = comp.kernel();
    let mut warm = DisplayStats::default();
    let mut ioctls = 0u64;
    // Stats at the last flip, before teardown.
    let end = match who {
        Compositor::Naive => {
            let mut shown: Option<u32> = None;
            for frame in 0..frames {
                if frame == BUFFERS {
                    warm = comp_sim.display_stats();
                    ioctls = 0;
                }
                let fd = fds[frame % BUFFERS].as_raw_fd();
                let handle = ioctl::prime_fd_to_handle(k, fd).map_err(err)?;
                let fb = ioctl::mode_addfb2(k, handle, LAYOUT).map_err(err)?;
                ioctl::gem_close(k, handle).map_err(err)?;
                ioctl::mode_page_flip(k, CRTC_ID, fb).map_err(err)?;
                if let Some(old) = shown.replace(fb) {
                    ioctl::mode_rmfb(k, old).map_err(err)?;
                    ioctls += 1;
                }
                ioctls += 4;
            }
            let end = comp_sim.display_stats();
            if let Some(fb) = shown {
                ioctl::mode_rmfb(k, fb).map_err(err)?;
            }
            end
        }
        Compositor::FlipChain => {
            let chain = FlipChain::new(&comp, CRTC_ID);
            let mut index = [None; BUFFERS];
            for frame in 0..frames {
                if frame == BUFFERS {
                    warm = comp_sim.display_stats();
                    ioctls = 0;
                }
                let b = frame % BUFFERS;
                let i = match index[b] {
                    Some(i) => i,
                    None => {
                        let i = chain.import_dmabuf(fds[b].as_fd(), LAYOUT).map_err(err)?;
                        ioctls += 2;
                        *index[b].insert(i)
                    }
                };
                chain.flip(i).map_err(err)?;
                ioctls += 1;
            }
            comp_sim.display_stats()
        }
    };
    let flips = end.flips - warm.flips;
    let steady = DisplayStats {
        flips,
        pins: end.pins - warm.pins,
        unpins: end.unpins - warm.unpins,
        maps: end.maps - warm.maps,
        unmaps: end.unmaps - warm.unmaps,
        tlb_invalidate_us: end.tlb_invalidate_us - warm.tlb_invalidate_us,
        mapped: end.mapped,
        framebuffers: end.framebuffers,
        ..DisplayStats::default()
    };
    Ok(Run {
        steady,
        flips,
        ioctls_per_flip: ioctls as f64 / flips.max(1) as f64,
    })
}

pub fn run(effort: Effort) -> Outcome {
    let frames = match effort {
        Effort::Quick => 60,
        Effort::Full => 600,
    };
    let headers = [
        "kernel",
        "compositor",
        "flips",
        "maps/flip",
        "unmaps/flip",
        "TLB ms/flip",
        "ioctls/flip",
        "check",
    ];
    let mut rows = vec![];
    let mut json_rows = vec![];
    let mut passed = true;
    let mut fixed_chain_unmaps = None;
    for fix in [false, true] {
        for who in [Compositor::Naive, Compositor::FlipChain] {
            let kernel = if fix {
                "fixed (vma_ref)"
            } else {
                "before the fix"
            };
            match run_one(fix, who, frames) {
                Ok(r) => {
                    let per = |n: u64| n as f64 / r.flips.max(1) as f64;
                    let unmaps = per(r.steady.unmaps);
                    let ms = r.steady.tlb_invalidate_us as f64 / 1000.0 / r.flips.max(1) as f64;
                    // The goal: no unmap per steady flip with the fix and a flip chain; the naive
                    // compositor (and any compositor on the old kernel) pays at least one.
                    let ok = if fix && who == Compositor::FlipChain {
                        fixed_chain_unmaps = Some(r.steady.unmaps);
                        r.steady.unmaps == 0
                    } else {
                        unmaps >= 1.0
                    };
                    passed &= ok;
                    rows.push(vec![
                        kernel.to_string(),
                        who.name().to_string(),
                        r.flips.to_string(),
                        format!("{:.2}", per(r.steady.maps)),
                        format!("{unmaps:.2}"),
                        format!("{ms:.2}"),
                        format!("{:.2}", r.ioctls_per_flip),
                        if ok { "ok" } else { "UNEXPECTED" }.to_string(),
                    ]);
                    json_rows.push(json!({
                        "display_vma_ref_fix": fix, "compositor": who.name(),
                        "steady_flips": r.flips, "maps": r.steady.maps, "unmaps": r.steady.unmaps,
                        "unmaps_per_flip": unmaps, "tlb_ms_per_flip": ms,
                        "ioctls_per_flip": r.ioctls_per_flip, "ok": ok,
                    }));
                }
                Err(e) => {
                    passed = false;
                    let mut row = vec![kernel.to_string(), who.name().to_string()];
                    row.extend(std::iter::repeat_n("-".to_string(), headers.len() - 3));
                    row.push(format!("error: {e}"));
                    rows.push(row);
                    json_rows.push(json!({"display_vma_ref_fix": fix, "compositor": who.name(),
                        "error": e, "ok": false}));
                }
            }
        }
    }
    let summary = format!(
        "{frames} frames over {BUFFERS} 1080p buffers (first {BUFFERS} flips are warm-up): fixed \
         kernel + flip chain {} display unmaps in steady state; {}",
        fixed_chain_unmaps.map_or("-".into(), |n| n.to_string()),
        if passed {
            "every other combination pays >= 1 unmap (5 ms of TLB invalidation) per flip"
        } else {
            "UNEXPECTED result, see the table"
        }
    );
    Outcome {
        name: "compositor",
        summary,
        passed,
        headers: headers.iter().map(|s| s.to_string()).collect(),
        rows,
        json: json!({"scenario": "compositor", "passed": passed, "frames": frames, "runs": json_rows}),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quick_run_meets_the_goal() {
        let o = run(Effort::Quick);
        assert!(o.passed, "{}\n{:?}", o.summary, o.rows);
    }
}
