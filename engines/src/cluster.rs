//! The simulated cluster: how many nodes, how many cores each. Simulated workers (cores)
//! queue work when busy; crossing nodes costs network latency and bandwidth.

use serde::{Deserialize, Serialize};

/// Nodes and cores of a simulated cluster.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Cluster {
    /// Number of machines.
    pub nodes: usize,
    /// Cores (task slots) per machine.
    pub cores_per_node: usize,
}

impl Default for Cluster {
    fn default() -> Self {
        Self {
            nodes: 1,
            cores_per_node: 2,
        }
    }
}

impl Cluster {
    /// Total cores.
    pub fn cores(&self) -> usize {
        self.nodes * self.cores_per_node
    }

    /// The node a core belongs to.
    pub fn node_of_core(&self, core: usize) -> usize {
        core / self.cores_per_node.max(1)
    }

    /// Checks the sizes; names the first bad key.
    pub fn validate(&self) -> Result<(), (&'static str, String)> {
        if self.nodes == 0 || self.nodes > 100_000 {
            return Err((
                "nodes",
                format!("{} is out of range; must be between 1 and 100000", self.nodes),
            ));
        }
        if self.cores_per_node == 0 || self.cores_per_node > 1024 {
            return Err((
                "cores_per_node",
                format!("{} is out of range; must be between 1 and 1024", self.cores_per_node),
            ));
        }
        Ok(())
    }
}
