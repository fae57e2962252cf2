//! A neuron model added as a plugin, with no edit to the engine: the Izhikevich neuron
//! (`model.rs`) is registered by `NeuronModelPlugin::<Izhikevich>` and the scene
//! `examples/izhikevich/izhikevich.ron` names it.
//!
//! ```text
//! cargo run --release --example izhikevich [SCENE] [OUT]
//! ```

mod model;

use std::path::PathBuf;
use std::process::ExitCode;

use myelin::prelude::*;

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let scene = PathBuf::from(
        args.next()
            .unwrap_or_else(|| "examples/izhikevich/izhikevich.ron".into()),
    );
    let out = PathBuf::from(args.next().unwrap_or_else(|| "out/izhikevich".into()));
    let opts = RunOptions {
        out: Some(out),
        overwrite: true,
        ..RunOptions::default()
    };
    match run_scene(&scene, &opts, |sim| {
        sim.add_plugins(NeuronModelPlugin::<model::Izhikevich>::default());
    }) {
        Ok(summary) => {
            print!("{}", summary.table());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
