//! Scenarios: end-to-end runs on the embedded kernel model that `msmws scenario` prints as tables.
//!
//! Owns: the list of scenarios and the shape of their results. Takes no locks itself.
//! Each scenario measures against a baseline run in the same process and reports ratios, never
//! absolute wall-clock claims.

pub mod best_fit;
pub mod bind;
pub mod compositor;
pub mod external_objects;
pub mod iova;
pub mod list_heap;
pub mod probe;
pub mod sweep;

/// What one scenario produced: a table for people and a JSON object for tools.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub name: &'static str,
    /// One line saying what was measured and whether the scenario's goal held.
    pub summary: String,
    /// `true` when every check the scenario makes held.
    pub passed: bool,
    pub headers: Vec<String>,
    pub rows: Vec<Vec<String>>,
    pub json: serde_json::Value,
}

/// How hard a scenario should work: `Full` is the measured run, `Quick` a smoke run for tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effort {
    Quick,
    Full,
}

/// A scenario by name.
pub struct Scenario {
    pub name: &'static str,
    pub about: &'static str,
    pub run: fn(Effort) -> Outcome,
}

/// Every scenario, in the order `msmws scenario all` runs them.
pub const ALL: &[Scenario] = &[
    Scenario {
        name: "probe",
        about: "device probe of every chip profile",
        run: probe::run,
    },
    Scenario {
        name: "iova",
        about: "GPU address allocator against util_vma_heap's algorithm and offset-allocator",
        run: iova::run,
    },
    Scenario {
        name: "external-objects",
        about: "Vulkan-exported image layouts through the metadata record into a GL importer, plus legacy and hostile records",
        run: external_objects::run,
    },
    Scenario {
        name: "compositor",
        about: "flip chains of exported buffers on kernels before and after the display vma_ref fix",
        run: compositor::run,
    },
    Scenario {
        name: "bind-churn",
        about: "VM_BIND of a game-like frame's buffers against turnip's policy",
        run: bind::run_churn,
    },
    Scenario {
        name: "sparse",
        about: "sparse binding of a 4 GiB resource in batches against turnip's policy",
        run: bind::run_sparse,
    },
    Scenario {
        name: "fault-sweep",
        about: "every kernel call of each scenario's and C test's flow failing once in turn",
        run: sweep::run,
    },
];

/// Finds a scenario by name.
pub fn find(name: &str) -> Option<&'static Scenario> {
    ALL.iter().find(|s| s.name == name)
}

/// Renders rows as an aligned text table.
pub fn render_table(headers: &[String], rows: &[Vec<String>]) -> String {
    let mut width: Vec<usize> = headers.iter().map(|h| h.len()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            if i < width.len() {
                width[i] = width[i].max(cell.len());
            }
        }
    }
    let line = |cells: &[String]| {
        cells
            .iter()
            .enumerate()
            .map(|(i, c)| format!("{:<w$}", c, w = width.get(i).copied().unwrap_or(0)))
            .collect::<Vec<_>>()
            .join("  ")
            .trim_end()
            .to_string()
    };
    let mut out = line(headers);
    out.push('\n');
    out.push_str(
        &width
            .iter()
            .map(|w| "-".repeat(*w))
            .collect::<Vec<_>>()
            .join("  "),
    );
    out.push('\n');
    for row in rows {
        out.push_str(&line(row));
        out.push('\n');
    }
    out
}
