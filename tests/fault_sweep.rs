//! The winsys fault-injection sweep (src/scenario/sweep.rs) in its quick form: every flow, two
//! call indices per request type, each with every errno the kernel can return there. Every run
//! must survive (or the rule not fire). `MSMWS_SWEEP_RULE=flow:POINT:N:ERRNO` runs one case and
//! prints it.

use msm_winsys::scenario::sweep::{self, run_once, Verdict, FLOWS};
use msm_winsys::sim::Injection;
use msm_winsys::Errno;

#[test]
fn every_flow_survives_every_sampled_fault() {
    if let Ok(rule) = std::env::var("MSMWS_SWEEP_RULE") {
        let parts: Vec<&str> = rule.split(':').collect();
        let (flow, point, nth, errno) = match parts.as_slice() {
            [f, p, n, e] => (*f, p.to_string(), *n, *e),
            [f, p, q, n, e] => (*f, format!("{p}:{q}"), *n, *e),
            _ => panic!("MSMWS_SWEEP_RULE=flow:POINT:N:ERRNO"),
        };
        let flow = FLOWS.iter().find(|f| f.name == flow).expect("flow");
        msm_winsys::sim::set_leak_check(msm_winsys::sim::LeakCheck::Record);
        let errno = (1..600)
            .map(Errno)
            .find(|e| e.name() == errno)
            .expect("errno");
        let (run, _) = run_once(
            flow,
            Some(Injection {
                point,
                nth: nth.parse().unwrap(),
                errno,
            }),
            &[],
        );
        println!("{run:#?}");
        return;
    }
    let sweeps = sweep::sweep(&[], 2).unwrap();
    let outcome = sweep::outcome(&sweeps, 2);
    println!("{}", outcome.summary);
    for s in &sweeps {
        assert!(!s.runs.is_empty(), "{}: no injection point", s.flow);
        assert!(
            s.count(Verdict::Survived) > 0,
            "{}: nothing survived",
            s.flow
        );
    }
    assert!(outcome.passed, "{}", outcome.summary);
}
