//! `myelin partition`: how a scene would be split over MPI ranks, without building it.

use std::path::Path;

use myelin::distributed::partition::{self, Costs};
use myelin::runner::simulation_with;

/// Mean firing rate assumed for traffic estimates when none is given [Hz].
pub const DEFAULT_RATE_HZ: f64 = 10.0;
/// Largest rank count the dry run accepts.
pub const MAX_RANKS: usize = 100_000;

/// Prints the partition of `scene` over `ranks` ranks (a table, or JSON).
pub fn partition(scene: &Path, ranks: usize, rate_hz: f64, json: bool) -> Result<(), String> {
    if ranks == 0 || ranks > MAX_RANKS {
        return Err(format!(
            "--ranks {ranks}: the dry run plans 1 to {MAX_RANKS} ranks"
        ));
    }
    if !(rate_hz >= 0.0 && rate_hz.is_finite()) {
        return Err(format!("--rate {rate_hz} Hz must be a non-negative number"));
    }
    let sim = simulation_with(0.1, |_| {});
    let loaded = myelin::io::load_scene(scene, sim.registry()).map_err(|e| e.to_string())?;
    let spec = loaded.scene.network();
    let reg = sim.registry();
    let costs = Costs::for_scene(&spec, reg, rate_hz);
    let plan = partition::partition(&spec, ranks, &costs)
        .map_err(|e| format!("{}: {e}", scene.display()))?;
    let report = partition::report(&spec, &loaded.name(), &plan, &costs);
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&report).map_err(|e| e.to_string())?
        );
    } else {
        print!("{}", report.table());
    }
    Ok(())
}
