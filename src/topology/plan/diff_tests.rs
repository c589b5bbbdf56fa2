//! Tests of the diff, including property tests on an in-memory broker model.

use proptest::prelude::*;
use serde_json::json;

use super::*;
use warren_definitions::password::{self, HashingAlgorithm};

use crate::topology::model::{ApplyTo, ExchangeType, Permission, QueueType, TopicPermission};
use crate::topology::normalise::{Side, normalise};
use crate::topology::plan::Kind;

/// Applies a plan to an in-memory model the way the broker would, stage by
/// stage as `apply` runs it (deleting an exchange or queue drops its bindings;
/// clearing topic permissions clears all of the user's in that vhost).
fn apply_in_memory(state: &mut Topology, plan: &Plan) {
    for stage in plan.stages() {
        for (_, change) in stage.changes {
            if stage.deleting {
                delete(state, &change.subject);
            } else {
                create(state, &change.subject);
            }
        }
    }
    normalise(state, Side::Broker);
}

fn drop_bindings(v: &mut Vhost, subject: &Subject) {
    v.bindings.retain(|b| !touches(b, subject));
}

fn delete(state: &mut Topology, subject: &Subject) {
    let vhost = subject.vhost().map(str::to_owned);
    let v = vhost.as_ref().and_then(|name| state.vhosts.get_mut(name));
    match subject {
        Subject::Vhost { name, .. } => {
            state.vhosts.remove(name);
            for u in state.users.values_mut() {
                u.permissions.remove(name);
                u.topic_permissions.remove(name);
            }
        }
        Subject::User { name, .. } => {
            state.users.remove(name);
        }
        Subject::Permission { user, vhost, .. } => {
            if let Some(u) = state.users.get_mut(user) {
                u.permissions.remove(vhost);
            }
        }
        Subject::TopicPermission { user, vhost, .. } => {
            if let Some(u) = state.users.get_mut(user) {
                u.topic_permissions.remove(vhost);
            }
        }
        Subject::Policy { name, operator, .. } => {
            let v = v.expect("vhost exists");
            if *operator {
                v.operator_policies.remove(name)
            } else {
                v.policies.remove(name)
            };
        }
        Subject::Exchange { name, .. } => {
            let v = v.expect("vhost exists");
            v.exchanges.remove(name);
            drop_bindings(v, subject);
        }
        Subject::Queue { name, .. } => {
            let v = v.expect("vhost exists");
            v.queues.remove(name);
            drop_bindings(v, subject);
        }
        Subject::Binding { binding, .. } => {
            v.expect("vhost exists").bindings.retain(|b| !b.same_identity(binding));
        }
    }
}

fn create(state: &mut Topology, subject: &Subject) {
    let vhost = subject.vhost().map(str::to_owned);
    match subject {
        Subject::Vhost { name, desired } => {
            let d = desired.clone().expect("desired");
            let v = state.vhosts.entry(name.clone()).or_default();
            v.description = d.description;
            v.tags = d.tags;
            v.default_queue_type = d.default_queue_type;
        }
        Subject::User { name, desired } => {
            let d = desired.clone().expect("desired");
            let u = state.users.entry(name.clone()).or_insert_with(|| User::granting(State::Present));
            u.tags = Some(d.tags);
            u.password = match d.password {
                PasswordChange::Keep(p) | PasswordChange::Set(p) => p,
            };
        }
        Subject::Permission { user, vhost, desired } => {
            state.users.get_mut(user).expect("user").permissions.insert(vhost.clone(), desired.clone().expect("d"));
        }
        Subject::TopicPermission { user, vhost, exchange, desired } => {
            let u = state.users.get_mut(user).expect("user");
            u.topic_permissions.entry(vhost.clone()).or_default().insert(exchange.clone(), desired.clone().expect("d"));
        }
        Subject::Policy { name, operator, desired, .. } => {
            let v = state.vhosts.get_mut(vhost.as_deref().expect("vhost")).expect("vhost exists");
            let map = if *operator { &mut v.operator_policies } else { &mut v.policies };
            map.insert(name.clone(), desired.clone().expect("d"));
        }
        Subject::Exchange { name, desired, .. } => {
            let v = state.vhosts.get_mut(vhost.as_deref().expect("vhost")).expect("vhost exists");
            v.exchanges.insert(name.clone(), desired.clone().expect("d"));
        }
        Subject::Queue { name, desired, .. } => {
            let v = state.vhosts.get_mut(vhost.as_deref().expect("vhost")).expect("vhost exists");
            v.queues.insert(name.clone(), desired.clone().expect("d"));
        }
        Subject::Binding { binding, .. } => {
            let v = state.vhosts.get_mut(vhost.as_deref().expect("vhost")).expect("vhost exists");
            v.bindings.push(binding.clone());
        }
    }
}

fn pruning() -> DiffOptions {
    DiffOptions { prune: true, connecting_user: Some("guest".into()) }
}

// ---- generators ----------------------------------------------------------

const VHOSTS: [&str; 2] = ["/", "v1"];
const EXCHANGES: [&str; 3] = ["e1", "e2", "e3"];
const QUEUES: [&str; 3] = ["q1", "q2", "q3"];
const USERS: [&str; 2] = ["u1", "u2"];

fn arguments(keys: &'static [&'static str]) -> impl Strategy<Value = Arguments> {
    proptest::collection::btree_map(proptest::sample::select(keys), 0i64..3, 0..3)
        .prop_map(|m| m.into_iter().map(|(k, v)| (k.to_owned(), json!(v))).collect())
}

fn exchange() -> impl Strategy<Value = Exchange> {
    (
        proptest::sample::select(vec![ExchangeType::Direct, ExchangeType::Topic, ExchangeType::Fanout]),
        any::<bool>(),
        any::<bool>(),
        arguments(&["alternate-exchange-ish", "x-custom"]),
    )
        .prop_map(|(kind, durable, internal, arguments)| Exchange {
            state: State::Present,
            kind,
            durable,
            auto_delete: false,
            internal,
            arguments,
        })
}

fn queue() -> impl Strategy<Value = Queue> {
    (any::<bool>(), arguments(&["x-message-ttl", "x-max-length", "x-expires"])).prop_map(|(durable, arguments)| Queue {
        state: State::Present,
        durable,
        auto_delete: false,
        arguments,
    })
}

fn binding() -> impl Strategy<Value = Binding> {
    (
        proptest::sample::select(&EXCHANGES[..]),
        any::<bool>(),
        0usize..3,
        proptest::sample::select(vec!["a", "b"]),
        arguments(&["x-match"]),
    )
        .prop_map(|(source, to_queue, i, rk, arguments)| Binding {
            state: State::Present,
            source: source.to_owned(),
            destination: if to_queue { QUEUES[i] } else { EXCHANGES[i] }.to_owned(),
            destination_type: if to_queue { DestinationType::Queue } else { DestinationType::Exchange },
            routing_key: rk.to_owned(),
            arguments,
        })
}

fn policy() -> impl Strategy<Value = Policy> {
    (proptest::sample::select(vec!["^a", "^b"]), 0i64..2, arguments(&["message-ttl", "max-length"])).prop_map(
        |(pattern, priority, definition)| Policy {
            state: State::Present,
            pattern: pattern.to_owned(),
            apply_to: ApplyTo::Queues,
            priority,
            definition,
        },
    )
}

fn vhost() -> impl Strategy<Value = Vhost> {
    (
        proptest::sample::select(vec!["one", "two"]),
        proptest::sample::select(vec![QueueType::Classic, QueueType::Quorum]),
        proptest::collection::btree_map(proptest::sample::select(&EXCHANGES[..]), exchange(), 0..3),
        proptest::collection::btree_map(proptest::sample::select(&QUEUES[..]), queue(), 0..3),
        proptest::collection::vec(binding(), 0..5),
        proptest::collection::btree_map(proptest::sample::select(vec!["p1", "p2"]), policy(), 0..2),
        proptest::collection::btree_map(proptest::sample::select(vec!["o1"]), policy(), 0..1),
    )
        .prop_map(|(description, default_type, exchanges, queues, mut bindings, policies, operator_policies)| {
            // Valid files only bind what they declare.
            bindings.retain(|b| {
                exchanges.contains_key(b.source.as_str())
                    && match b.destination_type {
                        DestinationType::Queue => queues.contains_key(b.destination.as_str()),
                        DestinationType::Exchange => exchanges.contains_key(b.destination.as_str()),
                    }
            });
            Vhost {
                state: State::Present,
                description: Some(description.to_owned()),
                tags: vec!["t".to_owned()],
                default_queue_type: Some(default_type),
                exchanges: exchanges.into_iter().map(|(k, v)| (k.to_owned(), v)).collect(),
                queues: queues.into_iter().map(|(k, v)| (k.to_owned(), v)).collect(),
                bindings,
                policies: policies.into_iter().map(|(k, v)| (k.to_owned(), v)).collect(),
                operator_policies: operator_policies.into_iter().map(|(k, v)| (k.to_owned(), v)).collect(),
                unmanaged: vec![],
            }
        })
}

fn permission() -> impl Strategy<Value = Permission> {
    proptest::sample::select(vec![".*", "^a", ""]).prop_map(|p| Permission {
        configure: p.to_owned(),
        write: ".*".to_owned(),
        read: p.to_owned(),
    })
}

fn user() -> impl Strategy<Value = User> {
    (
        proptest::sample::select(vec!["h1", "h2"]),
        proptest::sample::subsequence(vec!["administrator", "monitoring"], 0..=2),
        proptest::collection::btree_map(proptest::sample::select(&VHOSTS[..]), permission(), 0..3),
        proptest::collection::btree_map(
            proptest::sample::select(&VHOSTS[..]),
            proptest::collection::btree_map(
                proptest::sample::select(vec!["amq.topic", "e1"]),
                proptest::sample::select(vec!["^a", ".*"])
                    .prop_map(|w| TopicPermission { write: w.to_owned(), read: ".*".to_owned() }),
                0..3,
            ),
            0..2,
        ),
    )
        .prop_map(|(hash, tags, permissions, topic_permissions)| User {
            state: State::Present,
            password: Password::Hash { hash: hash.to_owned(), algorithm: HashingAlgorithm::Sha256 },
            tags: Some(tags.into_iter().map(str::to_owned).collect()),
            permissions: permissions.into_iter().map(|(k, v)| (k.to_owned(), v)).collect(),
            topic_permissions: topic_permissions
                .into_iter()
                .map(|(k, v)| (k.to_owned(), v.into_iter().map(|(e, p)| (e.to_owned(), p)).collect()))
                .collect(),
        })
}

/// Topologies over the same vhosts and users, so that a pruning plan makes
/// the broker hold exactly the target.
fn topology() -> impl Strategy<Value = Topology> {
    (vhost(), vhost(), user(), user()).prop_map(|(a, b, u1, u2)| {
        let mut t = Topology::default();
        t.vhosts.insert(VHOSTS[0].to_owned(), a);
        t.vhosts.insert(VHOSTS[1].to_owned(), b);
        t.users.insert(USERS[0].to_owned(), u1);
        t.users.insert(USERS[1].to_owned(), u2);
        normalise(&mut t, Side::Broker);
        t
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn planning_a_topology_against_itself_is_empty(t in topology()) {
        let plan = diff(&t, &t, &pruning()).expect("plans");
        prop_assert!(plan.is_empty(), "{}", plan.render(false));
    }

    #[test]
    fn applying_the_plan_from_a_to_b_yields_b(a in topology(), b in topology()) {
        let plan = diff(&b, &a, &pruning()).expect("plans");
        let mut state = a.clone();
        apply_in_memory(&mut state, &plan);
        prop_assert_eq!(&state, &b, "plan:\n{}", plan.render(false));
        let again = diff(&b, &state, &pruning()).expect("plans");
        prop_assert!(again.is_empty(), "second plan:\n{}", again.render(false));
    }
}

/// `b` with every other exchange, queue and binding turned `absent`.
fn with_absent(mut b: Topology) -> Topology {
    for v in b.vhosts.values_mut() {
        for (i, x) in v.exchanges.values_mut().enumerate() {
            if i % 2 == 1 {
                x.state = State::Absent;
            }
        }
        for (i, q) in v.queues.values_mut().enumerate() {
            if i % 2 == 1 {
                q.state = State::Absent;
            }
        }
        // Bindings of absent entities cannot be declared present.
        let gone: Vec<String> = v
            .exchanges
            .iter()
            .map(|(k, x)| (k, x.state))
            .chain(v.queues.iter().map(|(k, q)| (k, q.state)))
            .filter(|(_, state)| *state == State::Absent)
            .map(|(k, _)| k.clone())
            .collect();
        for (i, b) in v.bindings.iter_mut().enumerate() {
            if i % 2 == 1 || gone.contains(&b.source) || gone.contains(&b.destination) {
                b.state = State::Absent;
            }
        }
    }
    b
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn without_prune_apply_converges_keeps_the_undeclared_and_removes_the_absent(a in topology(), b in topology()) {
        let b = with_absent(b);
        let options = DiffOptions { prune: false, connecting_user: None };
        let plan = diff(&b, &a, &options).expect("plans");
        let mut state = a.clone();
        apply_in_memory(&mut state, &plan);
        let again = diff(&b, &state, &options).expect("plans");
        prop_assert!(again.is_empty(), "first plan:\n{}\nsecond plan:\n{}", plan.render(false), again.render(false));
        for (vname, bv) in &b.vhosts {
            let sv = &state.vhosts[vname];
            for (name, x) in &bv.exchanges {
                prop_assert_eq!(sv.exchanges.contains_key(name), x.state == State::Present);
            }
            for (name, q) in &bv.queues {
                prop_assert_eq!(sv.queues.contains_key(name), q.state == State::Present);
            }
            // Undeclared exchanges and queues are untouched.
            let av = &a.vhosts[vname];
            for (name, x) in av.exchanges.iter().filter(|(n, _)| !bv.exchanges.contains_key(*n)) {
                prop_assert_eq!(sv.exchanges.get(name), Some(x));
            }
            for (name, q) in av.queues.iter().filter(|(n, _)| !bv.queues.contains_key(*n)) {
                prop_assert_eq!(sv.queues.get(name), Some(q));
            }
        }
    }
}

// ---- examples --------------------------------------------------------------

fn one_vhost(v: Vhost) -> Topology {
    let mut t = Topology::default();
    t.vhosts.insert("/".to_owned(), v);
    normalise(&mut t, Side::Broker);
    t
}

fn q(args: &[(&str, Value)]) -> Queue {
    Queue { arguments: args.iter().map(|(k, v)| ((*k).to_owned(), v.clone())).collect(), ..Queue::default() }
}

fn bind(source: &str, queue: &str, key: &str) -> Binding {
    Binding {
        state: State::Present,
        source: source.into(),
        destination: queue.into(),
        destination_type: DestinationType::Queue,
        routing_key: key.into(),
        arguments: Arguments::new(),
    }
}

#[test]
fn an_argument_change_is_a_replace_that_recreates_the_queues_bindings() {
    let mut v = Vhost::default();
    v.exchanges.insert("x".into(), Exchange::default());
    v.queues.insert("q".into(), q(&[("x-message-ttl", json!(1000))]));
    v.bindings.push(bind("x", "q", "info"));
    let current = one_vhost(v.clone());
    v.queues.insert("q".into(), q(&[("x-message-ttl", json!(2000))]));
    let desired = one_vhost(v);

    let plan = diff(&desired, &current, &DiffOptions::default()).expect("plans");
    let lines: Vec<String> = plan.changes.iter().map(|c| format!("{:?} {}", c.action, c.describe())).collect();
    assert_eq!(
        lines,
        [
            "Replace queue \"q\" in vhost \"/\": x-message-ttl 1000 -> 2000; RabbitMQ cannot change this in place",
            "Create binding x -> queue q [info] in vhost \"/\": re-created: queue \"q\" is replaced",
        ]
    );
    assert_eq!(plan.changes[0].changed, ["x-message-ttl"]);
}

#[test]
fn exchange_argument_changes_rabbitmq_ignores_on_redeclare_are_still_replaces() {
    let mut v = Vhost::default();
    v.exchanges.insert("x".into(), Exchange::default());
    let current = one_vhost(v.clone());
    v.exchanges.get_mut("x").expect("x").arguments.insert("x-custom".into(), json!("on"));
    let desired = one_vhost(v);
    let plan = diff(&desired, &current, &DiffOptions::default()).expect("plans");
    assert_eq!(plan.changes.len(), 1);
    assert_eq!(plan.changes[0].action, Action::Replace);
}

#[test]
fn without_prune_undeclared_entities_are_untouched_and_with_prune_deleted() {
    let mut held = Vhost::default();
    held.queues.insert("declared".into(), Queue::default());
    held.queues.insert("extra".into(), Queue::default());
    held.queues.insert("amq.gen-xyz".into(), Queue::default());
    held.queues.insert("legacy.one".into(), Queue::default());
    held.exchanges.insert("amq.topic".into(), Exchange { kind: ExchangeType::Topic, ..Exchange::default() });
    held.bindings.push(bind("amq.topic", "extra", "#"));
    let current = one_vhost(held);

    let mut file = Vhost::default();
    file.queues.insert("declared".into(), Queue::default());
    file.unmanaged.push("^legacy\\.".into());
    let desired = one_vhost(file);

    assert!(diff(&desired, &current, &DiffOptions::default()).expect("plans").is_empty());
    let plan = diff(&desired, &current, &pruning()).expect("plans");
    let lines: Vec<String> = plan.changes.iter().map(Change::describe).collect();
    assert_eq!(
        lines,
        [
            "binding amq.topic -> queue extra [#] in vhost \"/\": not declared (--prune)",
            "queue \"extra\" in vhost \"/\": not declared (--prune)",
        ]
    );
}

#[test]
fn the_default_vhost_and_the_connecting_user_are_never_deleted() {
    let current = one_vhost(Vhost::default());
    let desired = one_vhost(Vhost { state: State::Absent, ..Vhost::default() });
    assert!(matches!(diff(&desired, &current, &pruning()), Err(DiffError::DefaultVhost)));

    let guest = |state| User { tags: Some(vec![]), ..User::granting(state) };
    let mut current = Topology::default();
    current.users.insert("guest".into(), guest(State::Present));
    let mut desired = Topology::default();
    desired.users.insert("guest".into(), guest(State::Absent));
    assert!(matches!(diff(&desired, &current, &pruning()), Err(DiffError::ConnectingUser { .. })));
}

#[test]
fn an_unchanged_clear_password_keeps_the_stored_hash_and_a_tag_change_sends_it_back() {
    let stored = password::hash("s3cret", HashingAlgorithm::Sha256);
    let user = |password, tags: &[&str]| User {
        state: State::Present,
        password,
        tags: Some(tags.iter().map(|t| (*t).to_owned()).collect()),
        permissions: BTreeMap::new(),
        topic_permissions: BTreeMap::new(),
    };
    let mut current = Topology::default();
    current.users.insert(
        "jack".into(),
        user(Password::Hash { hash: stored.clone(), algorithm: HashingAlgorithm::Sha256 }, &["a"]),
    );

    let mut same = Topology::default();
    same.users.insert("jack".into(), user(Password::Clear("s3cret".into()), &["a"]));
    assert!(diff(&same, &current, &pruning()).expect("plans").is_empty());

    let mut retagged = Topology::default();
    retagged.users.insert("jack".into(), user(Password::Clear("s3cret".into()), &["a", "b"]));
    let plan = diff(&retagged, &current, &pruning()).expect("plans");
    assert_eq!(plan.changes.len(), 1);
    assert_eq!(plan.changes[0].reason, "tags [\"a\"] -> [\"a\", \"b\"]");
    let Subject::User { desired: Some(spec), .. } = &plan.changes[0].subject else { panic!("a user change") };
    assert_eq!(spec.password.to_hash().0, stored, "the stored hash is sent back unchanged");

    let mut changed = Topology::default();
    changed.users.insert("jack".into(), user(Password::Clear("n3w".into()), &["a"]));
    let plan = diff(&changed, &current, &pruning()).expect("plans");
    assert_eq!(plan.changes[0].reason, "password changed");
    assert!(!plan.render(false).contains("n3w"), "the plan never shows a password");
    assert!(!format!("{plan:?}").contains("n3w"), "not even in debug output");

    // A file that leaves the password out keeps the stored one, even when the tags change.
    let mut unspecified = Topology::default();
    unspecified.users.insert("jack".into(), user(Password::None, &["a", "b"]));
    let plan = diff(&unspecified, &current, &pruning()).expect("plans");
    assert_eq!(plan.changes.len(), 1);
    assert_eq!(plan.changes[0].reason, "tags [\"a\"] -> [\"a\", \"b\"]");
    let Subject::User { desired: Some(spec), .. } = &plan.changes[0].subject else { panic!("a user change") };
    assert_eq!(spec.password.to_hash().0, stored, "the stored hash is sent back unchanged");
    unspecified.users.insert("jack".into(), user(Password::None, &["a"]));
    assert!(diff(&unspecified, &current, &pruning()).expect("plans").is_empty());
}

#[test]
fn a_user_entry_that_only_grants_leaves_password_and_tags_and_needs_the_user_on_the_broker() {
    let permission = Permission { configure: String::new(), write: ".*".into(), read: ".*".into() };
    let mut granting = Topology::default();
    let mut grant = User::granting(State::Present);
    grant.permissions.insert("/".into(), permission);
    granting.users.insert("guest".into(), grant);

    // The broker lacks the user: the plan names it instead of creating a user without a password.
    let error = diff(&granting, &Topology::default(), &DiffOptions::default()).expect_err("no such user");
    assert!(matches!(&error, DiffError::UndefinedUser { name } if name == "guest"), "{error}");
    assert!(error.to_string().starts_with("user \"guest\" does not exist on the broker"), "{error}");

    // The broker has it: only the permissions change.
    let stored = password::hash("guest", HashingAlgorithm::Sha256);
    let mut current = Topology::default();
    current.users.insert(
        "guest".into(),
        User {
            password: Password::Hash { hash: stored, algorithm: HashingAlgorithm::Sha256 },
            tags: Some(vec!["administrator".into()]),
            ..User::granting(State::Present)
        },
    );
    let plan = diff(&granting, &current, &DiffOptions::default()).expect("plans");
    assert_eq!(
        plan.changes.iter().map(Change::describe).collect::<Vec<_>>(),
        ["permissions \"guest\" in vhost \"/\": declared, missing on the broker"]
    );
}

#[test]
fn a_password_change_without_tags_in_the_file_sends_the_tags_the_user_has() {
    let mut current = Topology::default();
    current
        .users
        .insert("jack".into(), User { tags: Some(vec!["monitoring".into()]), ..User::granting(State::Present) });
    let mut desired = Topology::default();
    desired
        .users
        .insert("jack".into(), User { password: Password::Clear("n3w".into()), ..User::granting(State::Present) });
    let plan = diff(&desired, &current, &DiffOptions::default()).expect("plans");
    assert_eq!(plan.changes.len(), 1);
    assert_eq!(plan.changes[0].reason, "password set");
    let Subject::User { desired: Some(spec), .. } = &plan.changes[0].subject else { panic!("a user change") };
    assert_eq!(spec.tags, ["monitoring"], "`PUT /api/users` replaces the tags too: the held ones go back");
}

#[test]
fn a_spelled_out_classic_type_stays_classic_in_a_vhost_that_defaults_to_quorum() {
    // The file does not declare the vhost's default; the broker's vhost defaults to quorum.
    let file_with = |args: &[(&str, Value)]| {
        let mut v = Vhost::default();
        v.queues.insert("jobs".into(), q(args));
        let mut t = Topology::default();
        t.vhosts.insert("/".to_owned(), v);
        normalise(&mut t, Side::File);
        t
    };
    let mut held = Vhost { default_queue_type: Some(QueueType::Quorum), ..Vhost::default() };
    held.queues.insert("jobs".into(), q(&[("x-queue-type", json!("classic"))]));
    held.queues.insert("work".into(), Queue::default());
    let current = one_vhost(held);

    let classic = file_with(&[("x-queue-type", json!("classic"))]);
    let plan = diff(&classic, &current, &DiffOptions::default()).expect("plans");
    assert!(plan.is_empty(), "{}", plan.render(false));

    // Left out, the type is the vhost's default: quorum here, so the classic queue is replaced.
    let plan = diff(&file_with(&[]), &current, &DiffOptions::default()).expect("plans");
    assert_eq!(plan.changes.iter().map(|c| c.action).collect::<Vec<_>>(), [Action::Replace]);
}

#[test]
fn plan_output_reads_like_terraform() {
    let mut v = Vhost::default();
    v.queues.insert("gone".into(), Queue::default());
    v.queues.insert("q".into(), q(&[("x-max-length", json!(5))]));
    let current = one_vhost(v);
    let mut v = Vhost::default();
    v.queues.insert("q".into(), q(&[("x-max-length", json!(6))]));
    v.queues.insert("new".into(), Queue::default());
    let desired = one_vhost(v);
    let plan = diff(&desired, &current, &pruning()).expect("plans");
    insta::assert_snapshot!(plan.render(false), @r#"
      - queue "gone" in vhost "/": not declared (--prune)
      + queue "new" in vhost "/": declared, missing on the broker
    -/+ queue "q" in vhost "/": x-max-length 5 -> 6; RabbitMQ cannot change this in place

    Plan: 1 to create, 0 to update, 1 to replace, 1 to delete.
    "#);
    let json = serde_json::to_value(plan.to_json()).expect("serialises");
    assert_eq!(
        json[0],
        json!({"action": "delete", "kind": "queue", "vhost": "/", "name": "gone", "reason": "not declared (--prune)"})
    );
    assert_eq!(
        plan.stages().iter().map(|s| (s.kind, s.deleting)).collect::<Vec<_>>(),
        [(Kind::Queue, true), (Kind::Queue, false)]
    );
}

#[test]
fn queue_types_compare_by_meaning_when_file_and_broker_vhost_defaults_differ() {
    let mut file = Vhost { default_queue_type: Some(QueueType::Quorum), ..Vhost::default() };
    file.queues.insert("q".into(), Queue::default());
    let desired = one_vhost(file);

    // RabbitMQ 3.10 keeps an existing vhost's default; the queue was declared with its type spelled out.
    let mut held = Vhost::default();
    held.queues.insert("q".into(), q(&[("x-queue-type", json!("quorum"))]));
    let plan = diff(&desired, &one_vhost(held), &DiffOptions::default()).expect("plans");
    assert_eq!(
        plan.changes.iter().map(|c| c.subject.kind()).collect::<Vec<_>>(),
        [Kind::Vhost],
        "{}",
        plan.render(false)
    );

    let mut classic = Vhost::default();
    classic.queues.insert("q".into(), Queue::default());
    let plan = diff(&desired, &one_vhost(classic), &DiffOptions::default()).expect("plans");
    let replace = plan.changes.iter().find(|c| c.action == Action::Replace).expect("the queue is replaced");
    assert_eq!(replace.changed, ["x-queue-type"]);
    assert!(replace.reason.starts_with("x-queue-type \"classic\" -> \"quorum\""), "{}", replace.reason);
    let Subject::Queue { desired: Some(declared), .. } = &replace.subject else { panic!("a queue change") };
    assert_eq!(declared.arguments["x-queue-type"], json!("quorum"), "declared with its type spelled out");
}
