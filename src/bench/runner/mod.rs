//! Runs a scenario: connects every actor, starts them on one clock, walks
//! the phases (warmup, measure, drain) and collects what each actor hands back.
//!
//! ```text
//!   connect consumers ─▶ connect producers ─▶ t0 ─ warmup ─▶ measure ─▶ producers stop
//!        ─▶ drain (until every expected message arrived, or the drain limit) ─▶ consumers stop
//! ```
//!
//! Every wait is bounded: nothing outlives duration + drain + [`GRACE`]; an
//! actor that does not stop by then is aborted and the run marked failed.

mod connect;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use lapin::{Channel, Connection};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::bench::actors::consumer::{self, ConsumerPlan, ConsumerReport, Shared};
use crate::bench::actors::producer::{self, ProducerPlan, ProducerReport};
use crate::bench::actors::{ActorError, Clock, Schedule};
use crate::bench::host;
use crate::bench::link::{self, Drivers, Failover, Link};
use crate::bench::metrics::series::{Aggregate, SeriesRecorder, SharedAggregate};
use crate::bench::progress::{Reporter, Snapshot};
use crate::bench::scenario::Scenario;
use crate::bench::stream_link::{StreamConsumer, StreamLink, StreamProducer, StreamReconnect};
pub use connect::stream_endpoint;
use connect::{Connected, connect};

/// How long actors get to stop after their phase ended before they are aborted.
pub const GRACE: Duration = Duration::from_secs(5);

const TICK: Duration = Duration::from_millis(200);

/// What a run produced, complete or not.
#[derive(Debug)]
pub struct RunOutput {
    /// The clock the run used.
    pub clock: Clock,
    /// Producer reports, by producer id.
    pub producers: Vec<ProducerReport>,
    /// Consumer reports.
    pub consumers: Vec<ConsumerReport>,
    /// Every producer's schedule, by id.
    pub schedules: Arc<[Schedule]>,
    /// Per-second figures.
    pub aggregate: SharedAggregate,
    /// When producers were told to stop, ns since the epoch (the measured window's real end).
    pub producers_stopped_ns: u64,
    /// When the drain ended, ns since the epoch.
    pub drain_ended_ns: u64,
    /// CPU seconds warren's client used in the measured window (see
    /// [`host::cpu::ClientThreads`]); `None` when the window never began.
    pub window_cpu: Option<f64>,
    /// The largest share of the measured window one client thread spent
    /// running or waiting for a CPU; `None` when the window never began.
    pub busiest_thread: Option<f64>,
    /// True when every expected delivery arrived before the drain limit.
    pub drain_complete: bool,
    /// The first failure, if any.
    pub failure: Option<String>,
    /// True when Ctrl-C stopped the run.
    pub interrupted: bool,
}

/// Expected first deliveries per consumed queue, given what producers published so far.
pub type Expectation<'a> = dyn Fn(&[ProducerReport]) -> BTreeMap<String, u64> + Send + Sync + 'a;

/// Runs `scenario` against the broker whose nodes `amqp_urls` lists (each
/// already pointing at the run's vhost).
///
/// `interrupt` is Ctrl-C: producers stop, consumers drain, the output is
/// marked interrupted. `expected` says how many first deliveries each queue
/// should see, so the drain can end as soon as everything arrived.
pub async fn run(
    scenario: &Scenario,
    amqp_urls: &[String],
    reporter: &mut Reporter,
    interrupt: CancellationToken,
    expected: &Expectation<'_>,
) -> anyhow::Result<RunOutput> {
    let epoch = Instant::now();
    let nodes = connect::nodes(scenario, amqp_urls);
    let connected = connect(scenario, &nodes, amqp_urls).await?;
    let schedules = schedules(connected.producer_plans());
    let Connected {
        links, channels, consumers, producers, stream_consumers, stream_producers, stream_endpoint, ..
    } = connected;
    // Stops the drivers of ended connections' runtimes, however this function returns.
    let ended_links = CancellationToken::new();
    let _stop_driving = ended_links.clone().drop_guard();
    let (drivers, watched) = Drivers::new();
    for link in &links {
        drivers.watch(link);
    }
    tokio::spawn(link::keep_driven(watched, ended_links.clone()));
    let failover = Failover { nodes: Arc::new(nodes), give_up_after: scenario.reconnect, drivers: drivers.clone() };

    let clock = start_clock(scenario, epoch);
    let schedules = started(&schedules, clock.start_ns);
    let mut conductor = Conductor::new(clock, reporter, interrupt);
    let mut actors = conductor.spawn(&links, consumers, producers, &schedules, &failover);
    // Their links stay up until the run is over; dropping one stops its thread.
    let reconnect = |link: &StreamLink| {
        let endpoint = stream_endpoint.clone()?;
        let give_up_after = scenario.reconnect?;
        Some(StreamReconnect { endpoint, name: link.name().to_owned(), give_up_after })
    };
    let stream_links = conductor.spawn_stream(&mut actors, stream_consumers, stream_producers, &schedules, &reconnect);
    let window = conductor.measure(&actors.producers).await;
    let drain_limit = conductor.drain_limit(scenario.drain);
    let producers = conductor.settle_producers(&mut actors.producers, drain_limit).await;
    let drain_complete = conductor.drain(&actors.arrived, &expected(&producers), drain_limit).await;
    let drain_ended_ns = clock.now_ns();
    conductor.signals.stop_consumers.cancel();
    let consumers = conductor.collect_consumers(&mut actors.consumers).await;
    actors.abort_stragglers();
    ended_links.cancel();
    let reconnected = drivers.take();
    let mut connections: Vec<&Connection> = links.iter().map(|link| &link.connection).collect();
    connections.extend(reconnected.iter().map(|link| &link.connection));
    close(channels, connections).await;
    drop(reconnected);
    drop(links);
    drop(stream_links);
    conductor.show("done");
    let Conductor { aggregate, signals, interrupted, .. } = conductor;
    Ok(RunOutput {
        clock,
        producers,
        consumers,
        schedules,
        aggregate,
        producers_stopped_ns: window.producers_stopped_ns,
        drain_ended_ns,
        window_cpu: window.cpu,
        busiest_thread: window.busiest_thread,
        drain_complete,
        failure: signals.take_failure(),
        interrupted,
    })
}

/// The run's clock, starting now: warmup, then the measured window, then the drain.
fn start_clock(scenario: &Scenario, epoch: Instant) -> Clock {
    let start_ns = u64::try_from(epoch.elapsed().as_nanos()).unwrap_or(0);
    let measure_start_ns = start_ns + nanos(scenario.warmup);
    let measure_end_ns = measure_start_ns + nanos(scenario.duration);
    Clock { epoch, start_ns, measure_start_ns, measure_end_ns, drain_end_ns: measure_end_ns + nanos(scenario.drain) }
}

/// Every producer's schedule, by producer id: what consumers measure
/// end-to-end latency from, once [`started`].
fn schedules<'p>(plans: impl Iterator<Item = &'p ProducerPlan>) -> Vec<Schedule> {
    let mut plans_by_id: Vec<&ProducerPlan> = plans.collect();
    plans_by_id.sort_by_key(|plan| plan.id);
    plans_by_id.iter().map(|plan| plan.schedule).collect()
}

/// The schedules, starting at `start_ns`.
fn started(schedules: &[Schedule], start_ns: u64) -> Arc<[Schedule]> {
    schedules.iter().map(|schedule| Schedule { start_ns, ..*schedule }).collect::<Vec<_>>().into()
}

/// What the runner tells the actors, and what they tell it back.
#[derive(Clone)]
struct Signals {
    /// An actor failed: the run stops early.
    fault: CancellationToken,
    /// Producers stop publishing.
    stop_producers: CancellationToken,
    /// Producers stop waiting for confirms.
    abort: CancellationToken,
    /// Consumers stop.
    stop_consumers: CancellationToken,
    /// The first failure of the run; later ones are consequences of it.
    failure: Arc<Mutex<Option<String>>>,
}

impl Signals {
    fn new() -> Self {
        Signals {
            fault: CancellationToken::new(),
            stop_producers: CancellationToken::new(),
            abort: CancellationToken::new(),
            stop_consumers: CancellationToken::new(),
            failure: Arc::new(Mutex::new(None)),
        }
    }

    /// Keeps `message` unless an earlier failure is already noted.
    fn note_failure(&self, message: String) {
        if let Ok(mut slot) = self.failure.lock()
            && slot.is_none()
        {
            *slot = Some(message);
        }
    }

    /// What an actor does when it ends: a failure stops the whole run.
    fn actor_ended(&self, failure: Option<&ActorError>) {
        if let Some(error) = failure {
            self.note_failure(format!("{:#}", anyhow::Error::new(error.clone())));
            self.fault.cancel();
        }
    }

    fn take_failure(&self) -> Option<String> {
        self.failure.lock().ok().and_then(|mut failure| failure.take())
    }
}

/// The actors' tasks, and what the drain watches.
struct Actors {
    consumers: Vec<JoinHandle<ConsumerReport>>,
    producers: Vec<JoinHandle<ProducerReport>>,
    /// First deliveries so far, per consumed queue.
    arrived: BTreeMap<String, Arc<AtomicU64>>,
}

impl Actors {
    /// Stops any task still running past its grace; finished ones ignore this.
    fn abort_stragglers(&self) {
        for task in &self.consumers {
            task.abort();
        }
        for task in &self.producers {
            task.abort();
        }
    }
}

/// When the measured window really ended, and what warren's client spent in it.
struct Window {
    producers_stopped_ns: u64,
    /// See [`RunOutput::window_cpu`].
    cpu: Option<f64>,
    /// See [`RunOutput::busiest_thread`].
    busiest_thread: Option<f64>,
}

/// Walks the run's phases: starts the actors, tells them when to stop, shows
/// progress, and notes why the run ended early if it did.
struct Conductor<'r> {
    clock: Clock,
    aggregate: SharedAggregate,
    signals: Signals,
    reporter: &'r mut Reporter,
    /// Progress updates, on one beat across the phases.
    ticker: tokio::time::Interval,
    interrupt: CancellationToken,
    interrupted: bool,
}

impl<'r> Conductor<'r> {
    fn new(clock: Clock, reporter: &'r mut Reporter, interrupt: CancellationToken) -> Self {
        Conductor {
            clock,
            aggregate: Arc::new(Mutex::new(Aggregate::default())),
            signals: Signals::new(),
            reporter,
            ticker: tokio::time::interval(TICK),
            interrupt,
            interrupted: false,
        }
    }

    fn show(&mut self, phase: &'static str) {
        self.reporter.update(&snapshot(&self.clock, &self.aggregate, phase));
    }

    /// Starts every actor on its connection's runtime.
    fn spawn(
        &self,
        links: &[Link],
        consumers: Vec<(Channel, lapin::Consumer, ConsumerPlan, usize)>,
        producers: Vec<(Channel, ProducerPlan, usize)>,
        schedules: &Arc<[Schedule]>,
        failover: &Failover,
    ) -> Actors {
        let (clock, start_ns) = (self.clock, self.clock.start_ns);
        let mut actors = Actors { consumers: Vec::new(), producers: Vec::new(), arrived: BTreeMap::new() };
        for (channel, stream, plan, link) in consumers {
            let counter = actors.arrived.entry(plan.queue.clone()).or_default().clone();
            let shared = Shared { schedules: schedules.clone(), arrived: counter };
            let series = SeriesRecorder::new(self.aggregate.clone(), start_ns);
            let (stop, signals) = (self.signals.stop_consumers.clone(), self.signals.clone());
            let (status, failover) = (links[link].status(), failover.clone());
            actors.consumers.push(links[link].spawn(async move {
                let report = consumer::run(channel, stream, status, plan, clock, shared, series, stop, failover).await;
                signals.actor_ended(report.failure.as_ref());
                report
            }));
        }
        for (channel, mut plan, link) in producers {
            plan.schedule.start_ns = start_ns;
            let series = SeriesRecorder::new(self.aggregate.clone(), start_ns);
            let signals = self.signals.clone();
            let (stop, abort) = (signals.stop_producers.clone(), signals.abort.clone());
            let (status, failover) = (links[link].status(), failover.clone());
            actors.producers.push(links[link].spawn(async move {
                let report = producer::run(channel, status, plan, clock, series, stop, abort, failover).await;
                signals.actor_ended(report.failure.as_ref());
                report
            }));
        }
        actors
    }

    /// Starts every `protocol: stream` actor on its link's thread; the links, to keep until the run is over.
    fn spawn_stream(
        &self,
        actors: &mut Actors,
        consumers: Vec<(StreamConsumer, ConsumerPlan, StreamLink)>,
        producers: Vec<(StreamProducer, ProducerPlan, StreamLink)>,
        schedules: &Arc<[Schedule]>,
        reconnect: &dyn Fn(&StreamLink) -> Option<StreamReconnect>,
    ) -> Vec<StreamLink> {
        let (clock, start_ns) = (self.clock, self.clock.start_ns);
        let mut links = Vec::new();
        for (stream, plan, link) in consumers {
            let counter = actors.arrived.entry(plan.queue.clone()).or_default().clone();
            let shared = Shared { schedules: schedules.clone(), arrived: counter };
            let series = SeriesRecorder::new(self.aggregate.clone(), start_ns);
            let (stop, signals) = (self.signals.stop_consumers.clone(), self.signals.clone());
            let reconnect = reconnect(&link);
            actors.consumers.push(link.spawn(async move {
                let report = consumer::run_stream(stream, plan, clock, shared, series, stop, reconnect).await;
                signals.actor_ended(report.failure.as_ref());
                report
            }));
            links.push(link);
        }
        for (stream, mut plan, link) in producers {
            plan.schedule.start_ns = start_ns;
            let series = SeriesRecorder::new(self.aggregate.clone(), start_ns);
            let signals = self.signals.clone();
            let (stop, abort) = (signals.stop_producers.clone(), signals.abort.clone());
            let reconnect = reconnect(&link);
            actors.producers.push(link.spawn(async move {
                let report = producer::run_stream(stream, plan, clock, series, stop, abort, reconnect).await;
                signals.actor_ended(report.failure.as_ref());
                report
            }));
            links.push(link);
        }
        links
    }

    /// Warmup and measure: until the window ends, every producer reached its
    /// limit, Ctrl-C, or a fault. Then producers are told to stop.
    async fn measure(&mut self, producers: &[JoinHandle<ProducerReport>]) -> Window {
        let Clock { measure_start_ns, measure_end_ns, .. } = self.clock;
        // The client's threads at the window's start; this task polls on the run's own thread.
        let mut window_start = None;
        loop {
            let now = self.clock.now_ns();
            if window_start.is_none() && now >= measure_start_ns {
                window_start = Some(host::cpu::ClientThreads::sample());
            }
            if now >= measure_end_ns || producers.iter().all(JoinHandle::is_finished) {
                break;
            }
            tokio::select! {
                _ = tokio::time::sleep_until(self.clock.instant(measure_start_ns)), if window_start.is_none() => {}
                _ = tokio::time::sleep_until(self.clock.instant(measure_end_ns)) => {}
                _ = self.ticker.tick() => self.show("measure"),
                _ = self.interrupt.cancelled() => { self.interrupted = true; break; }
                _ = self.signals.fault.cancelled() => break,
            }
        }
        let producers_stopped_ns = self.clock.now_ns().min(measure_end_ns);
        self.signals.stop_producers.cancel();
        let window_end = window_start.flatten().and_then(|start| Some((start, host::cpu::ClientThreads::sample()?)));
        let window_s = self.clock.window_ns(producers_stopped_ns) as f64 / 1e9;
        if self.signals.fault.is_cancelled() {
            self.signals.abort.cancel();
            self.signals.stop_consumers.cancel();
        }
        Window {
            producers_stopped_ns,
            cpu: window_end.as_ref().map(|(start, end)| end.cpu_seconds_since(start)),
            busiest_thread: window_end.as_ref().map(|(start, end)| end.busiest_share_since(start, window_s)),
        }
    }

    /// When the drain ends at the latest: as planned, or a full drain from now after Ctrl-C.
    fn drain_limit(&self, drain: Duration) -> u64 {
        if self.interrupted { self.clock.now_ns() + nanos(drain) } else { self.clock.drain_end_ns }
    }

    /// Producers wait for their last confirms, at most until the drain limit;
    /// their reports, by producer id.
    async fn settle_producers(
        &mut self,
        tasks: &mut [JoinHandle<ProducerReport>],
        drain_limit: u64,
    ) -> Vec<ProducerReport> {
        let mut deadline_abort = Box::pin(tokio::time::sleep_until(self.clock.instant(drain_limit)));
        // Producers stop at once when aborted; one that does not within the grace is left behind.
        let hard_deadline = tokio::time::sleep_until(self.clock.instant(drain_limit) + GRACE);
        tokio::pin!(hard_deadline);
        let joined = futures::future::join_all(tasks.iter_mut());
        tokio::pin!(joined);
        let abort = self.signals.abort.clone();
        let results = loop {
            tokio::select! {
                results = &mut joined => break results,
                _ = &mut deadline_abort, if !abort.is_cancelled() => abort.cancel(),
                _ = &mut hard_deadline => {
                    self.signals.note_failure(format!("producers did not stop within {}s of the drain's end", GRACE.as_secs()));
                    break Vec::new();
                }
                _ = self.ticker.tick() => self.show("drain"),
                _ = self.signals.fault.cancelled(), if !abort.is_cancelled() => abort.cancel(),
            }
        };
        let mut producers = Vec::new();
        for result in results {
            match result {
                Ok(report) => producers.push(report),
                Err(error) => self.signals.note_failure(format!("a producer task ended abnormally: {error}")),
            }
        }
        producers.sort_by_key(|r| r.id);
        producers
    }

    /// Drain: consumers go on until every expected message arrived or the
    /// limit passed. True when everything arrived.
    async fn drain(
        &mut self,
        arrived: &BTreeMap<String, Arc<AtomicU64>>,
        wanted: &BTreeMap<String, u64>,
        drain_limit: u64,
    ) -> bool {
        let all_arrived = || {
            wanted
                .iter()
                .all(|(queue, want)| arrived.get(queue).is_some_and(|got| got.load(Ordering::Relaxed) >= *want))
        };
        while !self.signals.stop_consumers.is_cancelled() {
            if all_arrived() {
                return true;
            }
            if self.clock.now_ns() >= drain_limit {
                break;
            }
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_millis(10)) => {}
                _ = self.signals.fault.cancelled() => break,
                _ = self.interrupt.cancelled(), if !self.interrupted => { self.interrupted = true; break; }
            }
            self.show("drain");
        }
        false
    }

    /// The consumers' reports, once they stopped, each within the grace.
    async fn collect_consumers(&self, tasks: &mut [JoinHandle<ConsumerReport>]) -> Vec<ConsumerReport> {
        let mut consumers = Vec::new();
        let grace = tokio::time::sleep(GRACE);
        tokio::pin!(grace);
        for task in tasks.iter_mut() {
            tokio::select! {
                result = &mut *task => match result {
                    Ok(report) => consumers.push(report),
                    Err(error) => self.signals.note_failure(format!("a consumer task ended abnormally: {error}")),
                },
                _ = &mut grace => {
                    self.signals.note_failure(format!("consumers did not stop within {}s of the drain's end", GRACE.as_secs()));
                    break;
                }
            }
        }
        consumers
    }
}

fn nanos(duration: Duration) -> u64 {
    u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX / 4)
}

fn snapshot(clock: &Clock, aggregate: &SharedAggregate, phase: &'static str) -> Snapshot {
    let now = clock.now_ns();
    let elapsed = Duration::from_nanos(now.saturating_sub(clock.start_ns));
    let remaining = Duration::from_nanos(clock.measure_end_ns.saturating_sub(now));
    // Actors hand a second over when they first record in the next one, so look a little behind.
    let second = now.saturating_sub(clock.start_ns).saturating_sub(250_000_000) / 1_000_000_000;
    let (last, totals) = match aggregate.lock() {
        Ok(aggregate) => {
            let last = second.checked_sub(1).and_then(|s| aggregate.second(s)).map(|(c, h)| {
                let p99 = if h.is_empty() { None } else { Some(h.value_at_quantile(0.99) as f64 / 1000.0) };
                (*c, p99)
            });
            (last, aggregate.totals())
        }
        Err(_) => (None, Default::default()),
    };
    let phase = if phase == "measure" && now < clock.measure_start_ns { "warmup" } else { phase };
    Snapshot {
        phase,
        elapsed,
        remaining,
        publish_rate: last.map_or(0, |(c, _)| c.published),
        deliver_rate: last.map_or(0, |(c, _)| c.delivered),
        p99_us: last.and_then(|(_, p)| p),
        errors: totals.errors + totals.nacked,
        published: totals.published,
        delivered: totals.delivered,
    }
}

/// Closes channels first, then connections, each politely and within the grace.
async fn close(channels: Vec<Channel>, connections: Vec<&Connection>) {
    let open = channels.iter().filter(|c| c.status().connected());
    let closing = open.map(|c| c.close(200, "warren bench done".into()));
    let _ = tokio::time::timeout(GRACE, futures::future::join_all(closing)).await;
    let open = connections.iter().filter(|c| c.status().connected());
    let closing = open.map(|c| c.close(200, "warren bench done".into()));
    let _ = tokio::time::timeout(GRACE, futures::future::join_all(closing)).await;
}

/// [`run`] on a runtime of its own: the thread that connects, walks the
/// phases and collects reports, while the actors run on their connections'
/// I/O threads ([`link`]). The embedded broker, when there is one, keeps the
/// command's runtime to itself.
pub async fn run_on_own_thread(
    scenario: Scenario,
    amqp_urls: Vec<String>,
    mut reporter: Reporter,
    interrupt: CancellationToken,
    routes: crate::bench::routing::Routes,
) -> (anyhow::Result<RunOutput>, Reporter) {
    let (done, result) = tokio::sync::oneshot::channel();
    let spawned = std::thread::Builder::new().name(host::cpu::RUNNER_THREAD.into()).spawn(move || {
        let output = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
            Ok(runtime) => runtime.block_on(async {
                let expected = |reports: &[ProducerReport]| routes.expected_all(reports);
                run(&scenario, &amqp_urls, &mut reporter, interrupt, &expected).await
            }),
            Err(error) => Err(anyhow::Error::new(error).context("starting the bench's runtime")),
        };
        let _ = done.send((output, reporter));
    });
    if let Err(error) = spawned {
        return (Err(anyhow::Error::new(error).context("starting the bench's thread")), Reporter::Silent);
    }
    result
        .await
        .unwrap_or_else(|_| (Err(anyhow::anyhow!("the bench's thread ended without a result")), Reporter::Silent))
}
