//! Which clock a scenario's engine runs are timed by, prepared once per run: the live clock
//! (this machine's threads) or the simulated one (virtual time priced by a cost profile, on a
//! simulated cluster). What a clock cannot do for a scenario is refused here, by key.

use std::path::Path;

use streamlab_engines::cluster::Cluster;

use crate::error_run::{Result, RunError};
use crate::profile::{load_profile, Profile};
use crate::spec::{ClockKind, Scenario};

/// How the engine runs of a scenario are clocked.
#[derive(Clone, Debug)]
pub enum ClockSetup {
    /// Real threads and the wall clock, on this machine.
    Live,
    /// Virtual time, work priced by `profile`, on `cluster`.
    Simulated {
        /// The cost profile.
        profile: Box<Profile>,
        /// The simulated cluster.
        cluster: Cluster,
    },
}

impl ClockSetup {
    /// `"live"` or `"simulated"`.
    pub fn name(&self) -> &'static str {
        match self {
            ClockSetup::Live => "live",
            ClockSetup::Simulated { .. } => "simulated",
        }
    }
}

/// Prepares `clock` for `scenario`: loads its cost profile for the simulated clock, refuses a
/// multi-node cluster on the live one.
pub fn clock_setup(scenario: &Scenario, clock: ClockKind) -> Result<ClockSetup> {
    let pinned = scenario
        .engines
        .iter()
        .enumerate()
        .find_map(|(i, e)| e.kind.pinning_key().map(|key| (i, e, key)));
    match clock {
        ClockKind::Live if scenario.cluster.nodes > 1 => Err(RunError::Unsupported {
            path: scenario.path.clone(),
            message: format!(
                "key `cluster.nodes`: the live clock runs on this machine (1 node), not {}; use `clock = \"simulated\"` \
                 (or --clock simulated) to simulate a cluster",
                scenario.cluster.nodes
            ),
        }),
        ClockKind::Live => Ok(ClockSetup::Live),
        ClockKind::Simulated if scenario.workload.backlog() => {
            Err(RunError::Unsupported {
                path: scenario.path.clone(),
                message: "key `workload.backlog`: a backlog measures how fast the engines run on this machine; \
                          use `clock = \"live\"` (on virtual time `streamlab capacity` finds the sustainable rate)"
                    .into(),
            })
        }
        ClockKind::Simulated if pinned.is_some() => {
            let (i, e, key) = pinned.expect("an engine pins its threads");
            Err(RunError::Unsupported {
                path: scenario.path.clone(),
                message: format!(
                    "key `engine[{i}].{key}` (engine `{}`): pinning to cores pins this machine's threads; \
                     use `clock = \"live\"`, or drop the key on the simulated clock (it has no threads to pin)",
                    e.name
                ),
            })
        }
        ClockKind::Simulated => {
            let base = scenario.path.parent().unwrap_or(Path::new(""));
            let profile = load_profile(&scenario.profile, base)?;
            Ok(ClockSetup::Simulated {
                profile: Box::new(profile),
                cluster: scenario.cluster,
            })
        }
    }
}
