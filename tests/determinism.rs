//! Determinism (DESIGN.md): one seed gives bit-identical spike trains with 1 and 2 threads;
//! another seed gives different ones.

mod common;

use common::{read_spikes, run, scene, stderr};

fn run_to(dir: &std::path::Path, extra: &[&str]) {
    let s = scene("mixed.ron");
    let mut args = vec![
        "run",
        s.to_str().unwrap(),
        "--quiet",
        "--out",
        dir.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    let o = run(&args);
    assert!(o.status.success(), "myelin run failed: {}", stderr(&o));
}

#[test]
fn same_seed_same_spikes_for_one_and_two_threads_and_other_seed_differs() {
    let tmp = tempfile::tempdir().unwrap();
    let (a, b, c) = (
        tmp.path().join("t1"),
        tmp.path().join("t2"),
        tmp.path().join("seed"),
    );
    run_to(&a, &["--threads", "1"]);
    run_to(&b, &["--threads", "2"]);
    run_to(&c, &["--threads", "2", "--seed", "4243"]);
    for pop in ["E", "I", "D"] {
        let (ta, sa) = read_spikes(&a.join("recordings.h5"), pop);
        let (tb, sb) = read_spikes(&b.join("recordings.h5"), pop);
        assert!(
            !ta.is_empty(),
            "population {pop} must spike for the comparison to mean something"
        );
        assert_eq!(
            ta, tb,
            "spike times of {pop} differ between 1 and 2 threads"
        );
        assert_eq!(
            sa, sb,
            "spike senders of {pop} differ between 1 and 2 threads"
        );
    }
    let (ta, sa) = read_spikes(&a.join("recordings.h5"), "E");
    let (tc, sc) = read_spikes(&c.join("recordings.h5"), "E");
    assert!(
        ta != tc || sa != sc,
        "a different seed must give different spike trains"
    );
    // The sampled membrane potentials agree bit for bit too.
    let read_vm = |d: &std::path::Path| {
        hdf5::File::open(d.join("recordings.h5"))
            .unwrap()
            .dataset("state/I_V_m/values")
            .unwrap()
            .read_raw::<f32>()
            .unwrap()
    };
    assert_eq!(
        read_vm(&a),
        read_vm(&b),
        "V_m samples differ between 1 and 2 threads"
    );
}
