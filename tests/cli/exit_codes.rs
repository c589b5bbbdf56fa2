//! Every exit code `warren --help` documents, each from a command that
//! should produce it: a CI job tells drift (2) from a typo (64) by these.

use crate::util::{embedded_broker, publish_confirmed, repo_path, run, run_with_env};

fn write(dir: &std::path::Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, text).expect("writing a test file");
    path.display().to_string()
}

#[test]
fn each_documented_exit_code_comes_from_its_outcome() {
    let help = run(["--help"]);
    assert_eq!(help.code, 0, "--help is not an error: {}", help.stderr);
    for line in
        ["0   done", "1   error", "2   `plan`: changes pending", "3   `bench`", "4   `apply`", "64  usage error"]
    {
        assert!(help.stdout.contains(line), "--help documents `{line}`:\n{}", help.stdout);
    }
    assert_eq!(run(["--version"]).code, 0, "--version is not an error");

    let dir = tempfile::tempdir().expect("a temp dir");
    let seed = repo_path("topologies/seed.yaml").display().to_string();
    let jack = [("JACK_PASSWORD", "not-used")];

    // 0 and 1: a valid file, a missing one.
    assert_eq!(run(["validate", &seed, "--allow-unset"]).code, 0);
    let missing = run(["validate", "does-not-exist.yaml"]);
    assert_eq!(missing.code, 1, "a missing file is an error: {}", missing.stderr);

    // 2: changes pending on a fresh broker.
    let plan = run_with_env(["plan", &seed, "--broker", "embedded"], &jack);
    assert_eq!(plan.code, 2, "drift: {}{}", plan.stdout, plan.stderr);

    // 64: usage errors, never 2, whichever command they hit.
    let usage: [&[&str]; 7] = [
        &["plan", &seed, "--typo"],
        &["plan"],
        &["no-such-command"],
        &[],
        &["bench", "scenarios/seed.yaml", "--duration", "0s"],
        &["bench", "scenarios/seed.yaml", "--rate-scale", "-1"],
        &["report", "a.json", "--baseline", "b.json"],
    ];
    for args in usage {
        let out = run(args);
        assert_eq!(out.code, 64, "`warren {}` is a usage error:\n{}", args.join(" "), out.stderr);
        assert!(!out.stderr.is_empty(), "`warren {}` says what is wrong", args.join(" "));
    }

    // 3: a gate the run cannot meet.
    let scenario = write(
        dir.path(),
        "unmeetable.yaml",
        "name: unmeetable\n\
         topology: { vhosts: { /: { queues: { q: {} } } } }\n\
         duration: 1s\n\
         warmup: 0s\n\
         producers: [ { name: p, exchange: \"\", routing_key: q, rate: 100 } ]\n\
         consumers: [ { name: c, queue: q } ]\n\
         gates: { throughput_min: 1000000000 }\n",
    );
    let out = dir.path().join("r.json").display().to_string();
    let bench = run(["bench", &scenario, "--out", &out, "--quiet"]);
    assert_eq!(bench.code, 3, "a missed gate: {}{}", bench.stdout, bench.stderr);

    // 4: apply refuses to replace a queue that holds messages.
    let broker = embedded_broker();
    let (url, management) = (broker.target.amqp_url.clone(), broker.target.management_url.clone());
    let durable = write(dir.path(), "durable.yaml", "vhosts: { /: { queues: { kept: { durable: true } } } }\n");
    let transient = write(dir.path(), "transient.yaml", "vhosts: { /: { queues: { kept: { durable: false } } } }\n");
    let target = ["--broker", &url, "--management", &management, "--yes"];
    assert_eq!(run([&["apply", &durable][..], &target].concat()).code, 0);
    publish_confirmed(&url, "", "kept", 1);
    let refused = run([&["apply", &transient][..], &target].concat());
    assert_eq!(refused.code, 4, "would lose a message: {}{}", refused.stdout, refused.stderr);
}

#[test]
fn the_readme_documents_every_exit_code_as_help_does() {
    let readme = std::fs::read_to_string(repo_path("README.md")).expect("README.md");
    for (code, words) in [
        ("0", "0 done"),
        ("1", "1 error"),
        ("2", "2 changes pending"),
        ("3", "3 a gate failed"),
        ("3", "3 regression"),
        ("4", "4 refused"),
        ("64", "exits 64 on a usage error"),
    ] {
        assert!(readme.contains(words), "README.md documents exit {code} (`{words}`)");
    }
    let help = run(["--help"]);
    for code in ["0 ", "1 ", "2 ", "3 ", "4 ", "64 "] {
        assert!(help.stdout.lines().any(|l| l.trim_start().starts_with(code)), "--help lists exit {code}");
    }
}
