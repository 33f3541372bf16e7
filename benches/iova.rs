//! `cargo bench --bench iova`: the measured run of scenario `iova` (the same code as
//! `msmws scenario iova`), printed as a table.

use msm_winsys::scenario::{self, iova, Effort};

fn main() {
    let o = iova::run(Effort::Full);
    println!("{}", scenario::render_table(&o.headers, &o.rows));
    println!("{}", o.summary);
}
