//! JUnit XML, so CI systems (GitHub Actions, GitLab, Jenkins) show each
//! scenario gate and each compared figure as a test case of its own.

use std::fmt::Write as _;
use std::path::Path;

use crate::compare::{Comparison, Verdict, format_delta, format_gate_value, format_value};
use crate::result::GateResult;

/// One test case.
#[derive(Debug, Clone, PartialEq)]
pub struct Case {
    /// The suite it belongs to (`gates`, `baseline`).
    pub suite: String,
    /// Its name (`latency_p99_max`, `consumed msgs/s`).
    pub name: String,
    /// Why it failed; `None` when it passed.
    pub failure: Option<String>,
    /// What it measured, shown as the case's output.
    pub detail: String,
}

impl Case {
    /// The one failed case of a run that did not complete, saying why.
    pub fn run_failed(why: String) -> Case {
        Case { suite: "run".to_owned(), name: "run completed".to_owned(), failure: Some(why.clone()), detail: why }
    }
}

/// One case per scenario gate.
pub fn gate_cases(gates: &[GateResult]) -> Vec<Case> {
    gates
        .iter()
        .map(|g| {
            let detail = format!(
                "threshold {}, actual {}",
                format_gate_value(&g.name, g.threshold),
                format_gate_value(&g.name, g.actual)
            );
            Case {
                suite: "gates".to_owned(),
                name: g.name.clone(),
                failure: (!g.passed).then(|| format!("gate {} missed: {detail}", g.name)),
                detail,
            }
        })
        .collect()
}

/// One case per compared figure, then one per gate.
pub fn comparison_cases(comparison: &Comparison) -> Vec<Case> {
    let mut cases: Vec<Case> = comparison
        .figures
        .iter()
        .map(|f| {
            let mut detail = format!(
                "baseline {}, current {}, delta {}, tolerance {:.1}%",
                format_value(f.kind, f.baseline),
                format_value(f.kind, f.current),
                format_delta(f.delta),
                f.tolerance * 100.0
            );
            if let Some(note) = &f.note {
                detail.push_str("; ");
                detail.push_str(note);
            }
            Case {
                suite: "baseline".to_owned(),
                name: f.name.clone(),
                failure: (f.verdict == Verdict::Regression).then(|| format!("regression in {}: {detail}", f.name)),
                detail,
            }
        })
        .collect();
    cases.extend(gate_cases(&comparison.gates));
    cases
}

/// Escapes text for XML attributes and content.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            // Control characters other than tab and newlines are not allowed in XML 1.0.
            c if (c as u32) < 0x20 && !matches!(c, '\t' | '\n' | '\r') => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

/// The report as JUnit XML; suites are named `warren.<scenario>.<suite>`.
pub fn render(scenario: &str, cases: &[Case]) -> String {
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let failures = cases.iter().filter(|c| c.failure.is_some()).count();
    let _ = writeln!(
        out,
        "<testsuites name=\"warren {}\" tests=\"{}\" failures=\"{failures}\">",
        escape(scenario),
        cases.len()
    );
    let mut suites: Vec<&str> = Vec::new();
    for case in cases {
        if !suites.contains(&case.suite.as_str()) {
            suites.push(&case.suite);
        }
    }
    for suite in suites {
        let members: Vec<&Case> = cases.iter().filter(|c| c.suite == suite).collect();
        let failed = members.iter().filter(|c| c.failure.is_some()).count();
        let name = escape(&format!("warren.{scenario}.{suite}"));
        let _ = writeln!(
            out,
            "  <testsuite name=\"{name}\" tests=\"{}\" failures=\"{failed}\" errors=\"0\" skipped=\"0\">",
            members.len()
        );
        for case in members {
            let _ = write!(out, "    <testcase classname=\"{name}\" name=\"{}\" time=\"0\">", escape(&case.name));
            if let Some(failure) = &case.failure {
                let _ = write!(out, "<failure message=\"{}\" type=\"{suite}\"/>", escape(failure));
            }
            let _ = writeln!(out, "<system-out>{}</system-out></testcase>", escape(&case.detail));
        }
        out.push_str("  </testsuite>\n");
    }
    out.push_str("</testsuites>\n");
    out
}

/// Writes the report to `path`.
pub fn write(path: &Path, scenario: &str, cases: &[Case]) -> anyhow::Result<()> {
    use anyhow::Context as _;
    std::fs::write(path, render(scenario, cases))
        .with_context(|| format!("writing the JUnit report {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_messages_are_escaped() {
        let cases = vec![Case {
            suite: "gates".into(),
            name: "a<b & \"c\"".into(),
            failure: Some("x > y".into()),
            detail: "'d'".into(),
        }];
        let xml = render("s&t", &cases);
        assert!(xml.contains("name=\"a&lt;b &amp; &quot;c&quot;\""), "{xml}");
        assert!(xml.contains("message=\"x &gt; y\""), "{xml}");
        assert!(xml.contains("tests=\"1\" failures=\"1\""), "{xml}");
    }
}
