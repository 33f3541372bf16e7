//! `msmws sim` driven through stdin as a user or another tool would (docs/sim-protocol.md): one
//! JSON result line per request, in order, with the protocol's exact field names.

use std::io::Write;
use std::process::{Command, Stdio};

use serde_json::{json, Value};

fn run(args: &[&str], script: &[Value]) -> Vec<Value> {
    let mut input = String::new();
    for r in script {
        input += &r.to_string();
        input.push('\n');
    }
    run_raw(args, &input)
}

fn run_raw(args: &[&str], input: &str) -> Vec<Value> {
    let mut child = Command::new(env!("CARGO_BIN_EXE_msmws"))
        .arg("sim")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

const VA: u64 = 0x1_0000_0000;

fn setup() -> Vec<Value> {
    vec![
        json!({"call":"set_param","param":"EN_VM_BIND","value":1}),
        json!({"call":"gem_new","size":16384,"flags":["WC"]}),
        json!({"call":"submitqueue_new","flags":["VM_BIND"],"prio":0}),
    ]
}

#[test]
fn the_documented_requests_give_the_documented_results() {
    let mut script = setup();
    script.extend([
        json!({"call":"get_param","param":"VA_START"}),
        json!({"call":"vm_bind","queue":1,"ops":[
            {"op":"map","handle":1,"obj_offset":0,"iova":VA,"range":16384,"flags":[]},
            {"op":"map_null","iova":"0x100200000","range":"0x1000"},
            {"op":"unmap","iova":VA + 4096,"range":4096}]}),
        json!({"call":"vmas"}),
        json!({"call":"pt_pages"}),
        json!({"call":"gpu_run"}),
        json!({"call":"pt_pages"}),
    ]);
    let r = run(&[], &script);
    assert_eq!(r.len(), script.len(), "one result per request");
    assert_eq!(r[0], json!({"ok":true}));
    assert_eq!(r[1], json!({"ok":true,"handle":1}));
    assert_eq!(r[2], json!({"ok":true,"id":1}));
    assert_eq!(r[3], json!({"ok":true,"value":VA}));
    assert_eq!(r[4], json!({"ok":true,"prealloc_pages":6}));
    assert_eq!(
        r[5],
        json!({"ok":true,"vmas":[
            {"iova":VA,"range":4096,"kind":"bo","handle":1,"obj_offset":0},
            {"iova":VA + 8192,"range":8192,"kind":"bo","handle":1,"obj_offset":8192},
            {"iova":0x1_0020_0000u64,"range":4096,"kind":"null"}]})
    );
    assert_eq!(r[6], json!({"ok":true,"pages":1}));
    assert_eq!(r[7], json!({"ok":true,"ran":1}));
    assert_eq!(r[8], json!({"ok":true,"pages":5}));
}

#[test]
fn failures_carry_the_kernel_errno_name_and_the_session_goes_on() {
    let input = "{\"call\":\"vm_bind\",\"queue\":0,\"ops\":[]}\n\
                 this is not json\n\
                 [1,2]\n\
                 {\"call\":\"gem_new\",\"size\":0,\"flags\":[\"WC\"]}\n\
                 {\"call\":\"frobnicate\"}\n\
                 {\"call\":\"gem_new\",\"size\":\"0x1000\",\"flags\":[\"WC\"]}\n";
    let r = run_raw(&[], input);
    assert_eq!(r.len(), 6);
    for (i, errno) in ["EINVAL", "EINVAL", "EINVAL", "EINVAL", "EINVAL"]
        .iter()
        .enumerate()
    {
        assert_eq!(r[i]["ok"], json!(false), "{i}");
        assert_eq!(r[i]["errno"], json!(errno), "{i}");
        assert!(r[i]["message"].as_str().is_some_and(|m| !m.is_empty()));
    }
    assert_eq!(r[5], json!({"ok":true,"handle":1}));
}

#[test]
fn a_vm_bind_that_would_wait_forever_is_interrupted_with_eintr() {
    let mut script = setup();
    // 600 maps in separate 2 MiB blocks, unsorted: 1800 pages, admitted alone.
    let ops: Vec<Value> = (0..600u64)
        .map(|i| json!({"op":"map_null","iova":VA + (599 - i) * (2 << 20),"range":4096}))
        .collect();
    script.push(json!({"call":"vm_bind","queue":1,"ops":ops}));
    let one = json!({"call":"vm_bind","queue":1,"ops":[{"op":"map_null","iova":VA + (1u64 << 32),"range":4096}]});
    script.push(one.clone());
    script.push(json!({"call":"gpu_run"}));
    script.push(one);
    let r = run(&["--profile", "a660"], &script);
    assert_eq!(r[3], json!({"ok":true,"prealloc_pages":1800}));
    assert_eq!(r[4]["errno"], json!("EINTR"));
    assert!(r[4]["message"].as_str().unwrap().contains("throttle"));
    assert_eq!(r[5], json!({"ok":true,"ran":1}));
    assert_eq!(r[6], json!({"ok":true,"prealloc_pages":3}));
}

#[test]
fn the_devcoredump_and_vm_log_show_the_kernel_format() {
    let mut script = setup();
    script.extend([
        json!({"call":"vm_bind","queue":1,"ops":[{"op":"map","handle":1,"iova":VA,"range":4096}]}),
        json!({"call":"vm_bind","queue":1,"ops":[{"op":"unmap","iova":VA,"range":4096}]}),
        json!({"call":"gpu_run"}),
        json!({"call":"submit","cmds":[{"iova":VA,"size":64}]}),
        json!({"call":"gpu_run"}),
        json!({"call":"vm_log"}),
        json!({"call":"devcoredump"}),
        json!({"call":"vm_bind","queue":1,"ops":[]}),
    ]);
    let r = run(&["--vm-log-shift", "3"], &script);
    assert_eq!(
        r[8]["entries"],
        json!([{"op":"map","queue":1,"iova":VA,"range":4096},
               {"op":"unmap","queue":1,"iova":VA,"range":4096}])
    );
    let text = r[9]["text"].as_str().unwrap();
    assert!(
        text.ends_with("vm-log:\n  - map:1: 0x0000000100000000-0x0000000100001000\n"),
        "{text}"
    );
    assert_eq!(
        r[10]["errno"],
        json!("EPIPE"),
        "the fault made the VM unusable"
    );
}
