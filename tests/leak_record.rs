//! `LeakCheck::Record` (what `msmws scenario` uses): a file dropped holding objects is torn down
//! as at close and its report is kept for the program instead of panicking. Its own test binary,
//! because the mode is process-wide.

use msm_winsys::kernel::ioctl;
use msm_winsys::sim::{set_leak_check, take_recorded_leaks, LeakCheck, Sim};
use msm_winsys::uapi::MSM_BO_WC;

#[test]
fn record_mode_keeps_the_report_of_a_dropped_file_instead_of_panicking() {
    set_leak_check(LeakCheck::Record);
    let f = Sim::new("a750").unwrap().open().unwrap();
    let h = ioctl::gem_new(&f, 4096, MSM_BO_WC).unwrap();
    ioctl::syncobj_create(&f, false).unwrap();
    drop(f);
    let leaks = take_recorded_leaks();
    assert_eq!(leaks.len(), 1, "{leaks:?}");
    assert_eq!(leaks[0].1.handles, vec![h]);
    assert_eq!(leaks[0].1.summary(), "1 GEM handle, 1 syncobj");
    assert!(
        take_recorded_leaks().is_empty(),
        "taking empties the record"
    );

    // A file that released everything records nothing.
    let f = Sim::new("a750").unwrap().open().unwrap();
    let h = ioctl::gem_new(&f, 4096, MSM_BO_WC).unwrap();
    ioctl::gem_close(&f, h).unwrap();
    drop(f);
    assert!(take_recorded_leaks().is_empty());
}
