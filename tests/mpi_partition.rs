//! `myelin partition` (issue 8): the dry run works in every build, for any rank count up
//! to 100,000, and refuses a split it cannot make with the file and the numbers.

use std::process::Command;

fn partition(scene: &str, ranks: &str) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_myelin"))
        .args(["partition", scene, "--ranks", ranks])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("myelin starts")
}

#[test]
fn the_dry_run_reports_every_rank_with_totals_and_imbalance() {
    let o = partition("scenes/brunel.ron", "3");
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "partition failed: {text}");
    for want in [
        "over 3 rank(s)",
        "total",
        "imbal.",
        "exchange every 15 step(s)",
    ] {
        assert!(text.contains(want), "the report lacks {want:?}:\n{text}");
    }
    let total = text
        .lines()
        .find(|l| l.trim_start().starts_with("total"))
        .expect("a total row");
    let cols: Vec<&str> = total.split_whitespace().collect();
    assert_eq!(cols[1], "12500", "all neurons placed: {total}");
    assert_eq!(cols[2], "15625000", "all synapses placed: {total}");
}

#[test]
fn more_ranks_than_neurons_is_refused_with_the_file_and_the_numbers() {
    let o = partition("scenes/brunel.ron", "20000");
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        !o.status.success(),
        "20,000 ranks for 12,500 neurons must fail"
    );
    assert!(
        err.contains("scenes/brunel.ron")
            && err.contains("12500 neurons")
            && err.contains("20000 ranks"),
        "the error names the file and the numbers: {err}"
    );
    let o = partition("scenes/brunel.ron", "100001");
    assert!(
        !o.status.success(),
        "more than 100,000 ranks is out of range"
    );
}
