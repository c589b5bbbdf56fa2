//! The broker's current state, read in bulk and normalised into the model:
//! one `GET /api/definitions`, one `GET /api/vhosts` (3.10's definitions hold
//! vhost names only), and one `GET /api/queues/{vhost}` per vhost the file
//! names, for message and consumer counts.

use std::collections::BTreeSet;

use futures::future::try_join_all;

use super::definitions::{DefinitionsError, to_topology};
use super::model::Topology;
use crate::management::{Management, ManagementError, QueueStatsMap};

/// What a broker holds.
#[derive(Debug, Clone)]
pub struct CurrentState {
    /// Its entities, normalised.
    pub topology: Topology,
    /// Messages and consumers of the queues in the vhosts asked for.
    pub queues: QueueStatsMap,
    /// The user warren is logged in as.
    pub connecting_user: String,
}

/// Reading the state failed.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// A request failed.
    #[error(transparent)]
    Management(#[from] ManagementError),
    /// The definitions do not map onto the model.
    #[error("the broker's definitions do not map onto warren's model")]
    Definitions(#[source] DefinitionsError),
}

/// Reads everything; queue statistics only for `stats_for` vhosts (those that exist).
pub async fn read(management: &Management, stats_for: &BTreeSet<String>) -> Result<CurrentState, ReadError> {
    let (connecting_user, mut definitions, vhosts) =
        tokio::try_join!(management.whoami(), management.definitions(), management.vhosts())?;
    definitions.vhosts = vhosts;
    let topology = to_topology(&definitions).map_err(ReadError::Definitions)?;
    let wanted: Vec<&String> = stats_for.iter().filter(|v| topology.vhosts.contains_key(*v)).collect();
    let per_vhost = try_join_all(wanted.into_iter().map(|v| management.queue_stats(v))).await?;
    let queues = per_vhost.into_iter().flatten().collect();
    Ok(CurrentState { topology, queues, connecting_user })
}
