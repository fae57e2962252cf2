//! Myelin over MPI ranks.
//!
//! - [`partition`]: a petgraph graph of population blocks split over ranks, balanced on
//!   memory and work and cut to keep spike traffic low; a dry-run [`partition::Report`]
//!   for any number of ranks, from the description alone.
//! - [`comm`]: the communicator seam ([`comm::Local`] always; [`comm::Mpi`] with the `mpi`
//!   feature).
//! - [`exchange`]: local spikes kept per window, exchanged (collective or point-to-point)
//!   and delivered in the single-process order, so spike trains are bit-identical for any
//!   number of ranks.
//!
//! Construction is local: each rank builds the engine with
//! [`myelin_engine::LocalNeurons`] set to its [`partition::Plan::local`] part, so it draws
//! only the synapses onto its own neurons, from those targets' own random streams.

pub mod comm;
pub mod exchange;
pub mod partition;

pub use comm::{Comm, Local};
pub use exchange::{CommMode, ExchangeTimers, Exchanger, LocalPart, keep_local_spikes};
pub use partition::{Costs, Plan, Report, partition, report};
