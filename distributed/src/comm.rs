//! The communicator seam: what the engine asks of MPI, with a single-process
//! implementation ([`Local`]) always built and an MPI one ([`Mpi`]) behind the `mpi`
//! feature.

/// The collective operations the distributed engine uses. Every rank must call the same
/// operations in the same order (they are collectives).
pub trait Comm {
    /// This process's rank.
    fn rank(&self) -> usize;
    /// Number of ranks.
    fn size(&self) -> usize;
    /// Waits for every rank.
    fn barrier(&self);
    /// Every rank's `send`, concatenated in rank order, and the count from each rank.
    fn all_gather_v(&self, send: &[u32]) -> (Vec<u32>, Vec<usize>);
    /// Sends `send[r]` to rank `r`; returns what every rank sent here, concatenated in
    /// rank order, and the count from each.
    fn all_to_all_v(&self, send: &[Vec<u32>]) -> (Vec<u32>, Vec<usize>);
    /// The element-wise sum over ranks, on every rank.
    fn sum_u64(&self, x: &[u64]) -> Vec<u64>;
    /// Every rank's `x` (all of the same length), in rank order, on every rank.
    fn all_gather_f64(&self, x: &[f64]) -> Vec<f64>;
    /// On rank 0: every rank's `send`, concatenated in rank order, and the counts; `None`
    /// elsewhere.
    fn gather_v_u64(&self, send: &[u64]) -> Option<(Vec<u64>, Vec<usize>)>;
    /// Ends the whole job with `code` (MPI_Abort): every rank stops, none hangs.
    fn abort(&self, code: i32) -> !;
}

/// One process: every collective is the identity.
#[derive(Clone, Copy, Debug, Default)]
pub struct Local;

impl Comm for Local {
    fn rank(&self) -> usize {
        0
    }
    fn size(&self) -> usize {
        1
    }
    fn barrier(&self) {}
    fn all_gather_v(&self, send: &[u32]) -> (Vec<u32>, Vec<usize>) {
        (send.to_vec(), vec![send.len()])
    }
    fn all_to_all_v(&self, send: &[Vec<u32>]) -> (Vec<u32>, Vec<usize>) {
        let v = send.first().cloned().unwrap_or_default();
        let n = v.len();
        (v, vec![n])
    }
    fn sum_u64(&self, x: &[u64]) -> Vec<u64> {
        x.to_vec()
    }
    fn all_gather_f64(&self, x: &[f64]) -> Vec<f64> {
        x.to_vec()
    }
    fn gather_v_u64(&self, send: &[u64]) -> Option<(Vec<u64>, Vec<usize>)> {
        Some((send.to_vec(), vec![send.len()]))
    }
    fn abort(&self, code: i32) -> ! {
        std::process::exit(code)
    }
}

#[cfg(feature = "mpi")]
pub use self::mpi_comm::{Mpi, Universe, init, initialised};

#[cfg(feature = "mpi")]
mod mpi_comm {
    use mpi::Count;
    use mpi::collective::SystemOperation;
    use mpi::datatype::{Partition, PartitionMut};
    use mpi::topology::SimpleCommunicator;
    use mpi::traits::*;

    use super::Comm;

    pub use mpi::environment::Universe;

    /// Initialises MPI (threads may call it one at a time: the simulation runs on a rayon
    /// worker). Dropping the universe finalises MPI. `None` if MPI was initialised already.
    pub fn init() -> Option<Universe> {
        mpi::initialize_with_threading(mpi::Threading::Serialized).map(|(u, _)| u)
    }

    /// Whether MPI is initialised and not finalised.
    pub fn initialised() -> bool {
        mpi::environment::is_initialized() && !mpi::environment::is_finalized()
    }

    /// The world communicator of an initialised MPI.
    pub struct Mpi {
        world: SimpleCommunicator,
    }

    impl Mpi {
        /// The world communicator; MPI must be initialised ([`init`]) and not finalised.
        pub fn world() -> Self {
            Self {
                world: SimpleCommunicator::world(),
            }
        }
    }

    fn displs(counts: &[Count]) -> Vec<Count> {
        counts
            .iter()
            .scan(0, |acc, &c| {
                let d = *acc;
                *acc += c;
                Some(d)
            })
            .collect()
    }

    fn count(n: usize) -> Count {
        Count::try_from(n).unwrap_or_else(|_| {
            eprintln!("error: an MPI message of {n} elements exceeds MPI's count limit");
            SimpleCommunicator::world().abort(1)
        })
    }

    impl Comm for Mpi {
        fn rank(&self) -> usize {
            self.world.rank() as usize
        }
        fn size(&self) -> usize {
            self.world.size() as usize
        }
        fn barrier(&self) {
            self.world.barrier();
        }
        fn all_gather_v(&self, send: &[u32]) -> (Vec<u32>, Vec<usize>) {
            let n = self.size();
            let mut counts: Vec<Count> = vec![0; n];
            self.world
                .all_gather_into(&count(send.len()), &mut counts[..]);
            let d = displs(&counts);
            let total: usize = counts.iter().map(|&c| c as usize).sum();
            let mut buf = vec![0u32; total];
            {
                let mut part = PartitionMut::new(&mut buf[..], &counts[..], &d[..]);
                self.world.all_gather_varcount_into(send, &mut part);
            }
            (buf, counts.iter().map(|&c| c as usize).collect())
        }
        fn all_to_all_v(&self, send: &[Vec<u32>]) -> (Vec<u32>, Vec<usize>) {
            let n = self.size();
            let send_counts: Vec<Count> = send.iter().map(|v| count(v.len())).collect();
            let mut recv_counts: Vec<Count> = vec![0; n];
            self.world
                .all_to_all_into(&send_counts[..], &mut recv_counts[..]);
            let flat: Vec<u32> = send.iter().flatten().copied().collect();
            let sd = displs(&send_counts);
            let rd = displs(&recv_counts);
            let total: usize = recv_counts.iter().map(|&c| c as usize).sum();
            let mut buf = vec![0u32; total];
            {
                let sp = Partition::new(&flat[..], &send_counts[..], &sd[..]);
                let mut rp = PartitionMut::new(&mut buf[..], &recv_counts[..], &rd[..]);
                self.world.all_to_all_varcount_into(&sp, &mut rp);
            }
            (buf, recv_counts.iter().map(|&c| c as usize).collect())
        }
        fn sum_u64(&self, x: &[u64]) -> Vec<u64> {
            let mut out = vec![0u64; x.len()];
            self.world
                .all_reduce_into(x, &mut out[..], SystemOperation::sum());
            out
        }
        fn all_gather_f64(&self, x: &[f64]) -> Vec<f64> {
            let mut out = vec![0f64; x.len() * self.size()];
            self.world.all_gather_into(x, &mut out[..]);
            out
        }
        fn gather_v_u64(&self, send: &[u64]) -> Option<(Vec<u64>, Vec<usize>)> {
            let root = self.world.process_at_rank(0);
            let c = count(send.len());
            if self.rank() == 0 {
                let mut counts: Vec<Count> = vec![0; self.size()];
                root.gather_into_root(&c, &mut counts[..]);
                let d = displs(&counts);
                let total: usize = counts.iter().map(|&c| c as usize).sum();
                let mut buf = vec![0u64; total];
                {
                    let mut part = PartitionMut::new(&mut buf[..], &counts[..], &d[..]);
                    root.gather_varcount_into_root(send, &mut part);
                }
                Some((buf, counts.iter().map(|&c| c as usize).collect()))
            } else {
                root.gather_into(&c);
                root.gather_varcount_into(send);
                None
            }
        }
        fn abort(&self, code: i32) -> ! {
            self.world.abort(code)
        }
    }
}
