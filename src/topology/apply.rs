//! Runs a plan against a broker, stage by stage (see [`Plan::stages`]):
//! deletes one request each, at most [`CONCURRENCY`] at a time; vhosts one
//! `PUT` each; everything else created or updated through one definitions
//! import per stage, which is what makes thousands of entities fast.
//!
//! A failure stops after the stage it happened in; the error lists what was
//! done and what was not, and re-running converges.

use futures::stream::{self, StreamExt};

use super::current::{self, ReadError};
use warren_definitions::{Definitions, Tags, UserDef, VhostDef, VhostMetadata};

use super::definitions::{
    binding_def, exchange_def, operator_policy_def, permission_def, policy_def, queue_def, topic_permission_def,
};
use super::model::{State, Topology};
use super::plan::diff::{DiffError, DiffOptions, diff};
use super::plan::guard;
use super::plan::guard::DataLossRefused;
use super::plan::{Action, Change, Kind, Plan, Subject};
use crate::management::{Management, ManagementError};
use crate::target::Endpoint;

/// How many requests of one stage run at once.
pub const CONCURRENCY: usize = 16;

/// Plans of more changes than this get a progress bar (on a terminal).
pub const PROGRESS_THRESHOLD: usize = 5;

/// Reports progress; hidden in tests, without a terminal, or with `--quiet`.
#[derive(Debug, Clone)]
pub struct Progress {
    bar: Option<indicatif::ProgressBar>,
}

impl Progress {
    /// No output.
    pub fn hidden() -> Progress {
        Progress { bar: None }
    }

    /// A bar on stderr for `total` changes, when stderr is a terminal, the
    /// plan is larger than [`PROGRESS_THRESHOLD`] and `quiet` is off.
    pub fn for_plan(total: usize, quiet: bool) -> Progress {
        if quiet || total <= PROGRESS_THRESHOLD || !console::Term::stderr().is_term() {
            return Progress::hidden();
        }
        let bar = indicatif::ProgressBar::new(total as u64);
        if let Ok(style) = indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} changes  {msg}") {
            bar.set_style(style);
        }
        Progress { bar: Some(bar) }
    }

    fn stage(&self, message: String) {
        if let Some(bar) = &self.bar {
            bar.set_message(message);
        }
    }

    fn advance(&self, n: usize) {
        if let Some(bar) = &self.bar {
            bar.inc(n as u64);
        }
    }

    fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

/// What an apply did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ApplyReport {
    /// Changes applied.
    pub applied: usize,
}

/// An apply that stopped part way.
#[derive(Debug, thiserror::Error)]
#[error("applying stopped: {applied} of {total} changes were made before this failure; re-running apply converges")]
pub struct ApplyError {
    /// Changes fully applied.
    pub applied: usize,
    /// Changes in the plan.
    pub total: usize,
    /// The changes not (or only half) made, described.
    pub not_done: Vec<String>,
    /// The first failure.
    #[source]
    pub source: ManagementError,
}

/// Runs `plan` against the broker.
pub async fn execute(management: &Management, plan: &Plan, progress: &Progress) -> Result<ApplyReport, ApplyError> {
    // Per change, by its index in the plan: how many of its halves are done (a replace has two).
    let mut halves = vec![0u8; plan.changes.len()];
    let total = plan.changes.len();
    let mut failure = None;
    for stage in plan.stages() {
        let verb = if stage.deleting { "deleting" } else { "declaring" };
        progress.stage(format!("{verb} {}", stage.kind.as_str()));
        let results: Vec<(usize, &Change, Result<(), ManagementError>)> = if stage.deleting {
            stream::iter(stage.changes.iter().copied())
                .map(|(index, change)| async move { (index, change, delete(management, change).await) })
                .buffer_unordered(CONCURRENCY)
                .collect()
                .await
        } else if stage.kind == Kind::Vhost {
            stream::iter(stage.changes.iter().copied())
                .map(|(index, change)| async move { (index, change, put_vhost(management, change).await) })
                .buffer_unordered(CONCURRENCY)
                .collect()
                .await
        } else {
            let document = import_document(stage.changes.iter().map(|(_, change)| *change));
            let what = format!("{} {}", stage.changes.len(), stage.kind.as_str());
            let result = management.import(&what, &document).await;
            match result {
                Ok(()) => stage.changes.iter().map(|(index, change)| (*index, *change, Ok(()))).collect(),
                Err(error) => {
                    failure = Some(error);
                    Vec::new()
                }
            }
        };
        for (index, change, result) in results {
            match result {
                Ok(()) => {
                    halves[index] += 1;
                    if !(stage.deleting && change.action == Action::Replace) {
                        progress.advance(1);
                    }
                }
                Err(error) => {
                    failure.get_or_insert(error);
                }
            }
        }
        if failure.is_some() {
            break;
        }
    }
    progress.finish();
    let needed = |c: &Change| if c.action == Action::Replace { 2 } else { 1 };
    let applied = plan.changes.iter().zip(&halves).filter(|&(c, &done)| done >= needed(c)).count();
    match failure {
        None => Ok(ApplyReport { applied }),
        Some(source) => {
            let not_done = plan
                .changes
                .iter()
                .zip(&halves)
                .filter(|&(c, &half)| half < needed(c))
                .map(|(c, &half)| {
                    let note = if c.action == Action::Replace && half == 1 { " (deleted, not re-created)" } else { "" };
                    format!("{} {}{note}", c.action.marker().trim(), c.describe())
                })
                .collect();
            Err(ApplyError { applied, total, not_done, source })
        }
    }
}

async fn delete(m: &Management, change: &Change) -> Result<(), ManagementError> {
    match &change.subject {
        Subject::Vhost { name, .. } => m.delete_vhost(name).await,
        Subject::User { name, .. } => m.delete_user(name).await,
        Subject::Permission { user, vhost, .. } => m.clear_permissions(user, vhost).await,
        Subject::TopicPermission { user, vhost, .. } => m.clear_topic_permissions(user, vhost).await,
        Subject::Policy { vhost, name, operator, .. } => m.delete_policy(vhost, name, *operator).await,
        Subject::Exchange { vhost, name, .. } => m.delete_exchange(vhost, name).await,
        Subject::Queue { vhost, name, .. } => m.delete_queue(vhost, name).await,
        Subject::Binding { vhost, binding } => {
            m.delete_binding(vhost, &super::definitions::binding_def(vhost, binding)).await
        }
    }
}

async fn put_vhost(m: &Management, change: &Change) -> Result<(), ManagementError> {
    match &change.subject {
        // A new vhost with a default queue type is imported: RabbitMQ 3.10
        // takes the type from an import's metadata but ignores it in
        // `PUT /api/vhosts`. Others are PUT, the API's ordinary way.
        Subject::Vhost { name, desired: Some(vhost) }
            if change.action == Action::Create && vhost.default_queue_type.is_some() =>
        {
            let metadata = VhostMetadata {
                description: vhost.description.clone(),
                tags: Some(Tags::List(vhost.tags.clone())),
                default_queue_type: vhost.default_queue_type.map(|t| t.as_str().to_owned()),
            };
            // Only `metadata`: RabbitMQ 3.10 ignores it when top-level fields are present.
            let def = VhostDef {
                name: name.clone(),
                description: None,
                tags: None,
                default_queue_type: None,
                metadata: Some(metadata),
            };
            m.import(&format!("vhost {name:?}"), &Definitions { vhosts: Some(vec![def]), ..Definitions::default() })
                .await
        }
        Subject::Vhost { name, desired: Some(vhost) } => m.put_vhost(&super::definitions::vhost_def(name, vhost)).await,
        // The diff gives every creating vhost change its desired value.
        _ => Ok(()),
    }
}

/// The definitions document that creates or updates `changes`.
fn import_document<'a>(changes: impl Iterator<Item = &'a Change>) -> Definitions {
    let mut d = Definitions::default();
    for change in changes {
        match &change.subject {
            Subject::User { name, desired: Some(spec) } => {
                let (password_hash, algorithm) = spec.password.to_hash();
                d.users.get_or_insert_default().push(UserDef {
                    name: name.clone(),
                    password_hash,
                    password: None,
                    hashing_algorithm: Some(algorithm.as_str().to_owned()),
                    tags: Some(Tags::Joined(spec.tags.join(","))),
                    limits: None,
                });
            }
            Subject::Permission { user, vhost, desired: Some(p) } => {
                d.permissions.get_or_insert_default().push(permission_def(user, vhost, p))
            }
            Subject::TopicPermission { user, vhost, exchange, desired: Some(p) } => {
                d.topic_permissions.get_or_insert_default().push(topic_permission_def(user, vhost, exchange, p))
            }
            Subject::Policy { vhost, name, operator: false, desired: Some(p) } => {
                d.policies.push(policy_def(vhost, name, p))
            }
            Subject::Policy { vhost, name, operator: true, desired: Some(p) } => {
                d.parameters.push(operator_policy_def(vhost, name, p))
            }
            Subject::Exchange { vhost, name, desired: Some(x) } => d.exchanges.push(exchange_def(vhost, name, x)),
            Subject::Queue { vhost, name, desired: Some(q) } => d.queues.push(queue_def(vhost, name, q)),
            Subject::Binding { vhost, binding } => d.bindings.push(binding_def(vhost, binding)),
            _ => {}
        }
    }
    d
}

/// How [`converge`] behaves.
#[derive(Debug, Clone, Default)]
pub struct ConvergeOptions {
    /// Delete what the topology's vhosts do not declare.
    pub prune: bool,
    /// Replace or delete queues even when they hold messages or have consumers.
    pub allow_data_loss: bool,
    /// AMQP URLs of the same broker's nodes, for exact message counts in the guards.
    pub amqp_urls: Vec<String>,
}

/// Why [`converge`] did not converge.
#[derive(Debug, thiserror::Error)]
pub enum ConvergeError {
    /// The management API could not be used or a request failed.
    #[error("talking to the management API")]
    Client(#[source] ManagementError),
    /// Reading the broker's state failed.
    #[error("reading the broker's state")]
    Read(#[source] ReadError),
    /// The topology asks for something warren never does.
    #[error(transparent)]
    Diff(#[from] DiffError),
    /// A guard refused the plan.
    #[error(transparent)]
    Refused(#[from] DataLossRefused),
    /// Applying failed part way.
    #[error(transparent)]
    Apply(#[from] ApplyError),
}

/// Plans and applies `topology` on the broker at `endpoints`, without output:
/// the entry point for other commands (`bench` applies a scenario's topology).
/// A write cut off in flight (a node stopped answering) is not repeated
/// blindly: the state is read again through the next node, planned and
/// guarded again, and what is left applied, once per node at most. Returns
/// the first plan (what this call set out to change) and every change made.
pub async fn converge(
    endpoints: &[Endpoint],
    topology: &Topology,
    options: ConvergeOptions,
) -> Result<(Plan, ApplyReport), ConvergeError> {
    let management = Management::new(endpoints).map_err(ConvergeError::Client)?;
    let first = plan_guarded(&management, topology, &options).await?;
    let mut plan = first.clone();
    let (mut applied, mut attempts) = (0, 1);
    loop {
        match execute(&management, &plan, &Progress::hidden()).await {
            Ok(report) => return Ok((first, ApplyReport { applied: applied + report.applied })),
            Err(error) if matches!(error.source, ManagementError::Interrupted { .. }) && attempts < endpoints.len() => {
                applied += error.applied;
                attempts += 1;
                plan = plan_guarded(&management, topology, &options).await?;
            }
            Err(error) => return Err(error.into()),
        }
    }
}

/// Reads the state of `topology`'s vhosts, plans, and checks the guards (unless
/// `options.allow_data_loss`).
async fn plan_guarded(
    management: &Management,
    topology: &Topology,
    options: &ConvergeOptions,
) -> Result<Plan, ConvergeError> {
    let vhosts = topology.vhosts.keys().cloned().collect();
    let state = current::read_vhosts(management, &vhosts).await.map_err(ConvergeError::Read)?;
    let diff_options = DiffOptions { prune: options.prune, connecting_user: Some(state.connecting_user.clone()) };
    let plan = diff(topology, &state.topology, &diff_options)?;
    if !options.allow_data_loss {
        let reasons = guard::check(management, &options.amqp_urls, &plan, &state.topology)
            .await
            .map_err(ConvergeError::Client)?;
        if !reasons.is_empty() {
            return Err(DataLossRefused { reasons }.into());
        }
    }
    Ok(plan)
}

/// Deletes the exchanges and queues `topology` declares (messages included),
/// leaving vhosts, users, permissions and policies: how `bench` removes what
/// a run created.
pub async fn remove(endpoints: &[Endpoint], topology: &Topology) -> Result<(Plan, ApplyReport), ConvergeError> {
    // Only vhosts that exist: a vhost named with nothing present in it would otherwise be created.
    let management = Management::new(endpoints).map_err(ConvergeError::Client)?;
    let existing = management.vhosts().await.map_err(ConvergeError::Client)?;
    let mut absent = Topology::default();
    for (name, vhost) in topology.vhosts.iter().filter(|(name, _)| existing.iter().any(|v| &v.name == *name)) {
        let mut v = super::model::Vhost::default();
        for (x, exchange) in &vhost.exchanges {
            v.exchanges.insert(x.clone(), super::model::Exchange { state: State::Absent, ..exchange.clone() });
        }
        for (q, queue) in &vhost.queues {
            v.queues.insert(q.clone(), super::model::Queue { state: State::Absent, ..queue.clone() });
        }
        absent.vhosts.insert(name.clone(), v);
    }
    converge(endpoints, &absent, ConvergeOptions { prune: false, allow_data_loss: true, amqp_urls: Vec::new() }).await
}
