//! The broker's current state, read in bulk and normalised into the model.
//! For a whole broker (`export`): one `GET /api/definitions` and one
//! `GET /api/vhosts` (3.10's definitions hold vhost names only). For the
//! vhosts a file names (`plan`, `apply`): `GET /api/definitions/{vhost}` for
//! each, plus users, permissions and topic permissions, so other vhosts on a
//! shared broker cost nothing. Message and consumer counts cost one
//! `GET /api/queues/{vhost}` per vhost and are slow on large vhosts (2.4 s
//! for 5,000 queues on RabbitMQ 3.10), so they are read only for the vhosts
//! where a plan would drop queues.

use std::collections::BTreeSet;

use futures::future::try_join_all;

use super::definitions::{DefinitionsError, to_topology};
use super::model::Topology;
use super::normalise::Side;
use crate::management::{Management, ManagementError, QueueStatsMap};

/// What a broker holds.
#[derive(Debug, Clone)]
pub struct CurrentState {
    /// Its entities, normalised.
    pub topology: Topology,
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

/// Reads every entity of the broker (no queue statistics).
pub async fn read(management: &Management) -> Result<CurrentState, ReadError> {
    let (connecting_user, mut definitions, vhosts) =
        tokio::try_join!(management.whoami(), management.definitions(), management.vhosts())?;
    definitions.vhosts = Some(vhosts);
    let topology = to_topology(&definitions, Side::Broker).map_err(ReadError::Definitions)?;
    Ok(CurrentState { topology, connecting_user })
}

/// Reads the entities of `vhosts` (those that exist), and every user with
/// its permissions (no queue statistics).
pub async fn read_vhosts(management: &Management, vhosts: &BTreeSet<String>) -> Result<CurrentState, ReadError> {
    let (connecting_user, all_vhosts, mut definitions) =
        tokio::try_join!(management.whoami(), management.vhosts(), management.users_and_permissions())?;
    let named: Vec<_> = all_vhosts.into_iter().filter(|v| vhosts.contains(&v.name)).collect();
    let per_vhost = try_join_all(named.iter().map(|v| management.vhost_definitions(&v.name))).await?;
    definitions.vhosts = Some(named);
    for d in per_vhost {
        definitions.queues.extend(d.queues);
        definitions.exchanges.extend(d.exchanges);
        definitions.bindings.extend(d.bindings);
        definitions.policies.extend(d.policies);
        definitions.parameters.extend(d.parameters);
    }
    let topology = to_topology(&definitions, Side::Broker).map_err(ReadError::Definitions)?;
    Ok(CurrentState { topology, connecting_user })
}

/// Message and consumer counts of every queue in `vhosts` (one request per vhost).
pub async fn queue_stats(management: &Management, vhosts: &BTreeSet<String>) -> Result<QueueStatsMap, ManagementError> {
    let per_vhost = try_join_all(vhosts.iter().map(|v| management.queue_stats(v))).await?;
    Ok(per_vhost.into_iter().flatten().collect())
}
