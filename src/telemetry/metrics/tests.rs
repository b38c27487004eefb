use super::*;
use prometheus::proto::MetricType;

/// docs/metrics.md has a row for every declared metric, with its type and every label.
#[test]
fn docs_describe_every_metric() {
    let docs = include_str!("../../../docs/metrics.md");
    let mut names = Vec::new();
    for metric in all() {
        let family = &metric.collect()[0];
        let kind = match family.get_field_type() {
            MetricType::COUNTER => "counter",
            MetricType::GAUGE => "gauge",
            MetricType::HISTOGRAM => "histogram",
            other => panic!("{}: unexpected type {other:?}", family.name()),
        };
        for desc in metric.desc() {
            let start = format!("| `{}` | ", desc.fq_name);
            let row = docs
                .lines()
                .find_map(|l| l.strip_prefix(start.as_str()))
                .unwrap_or_else(|| panic!("docs/metrics.md has no row for {}", desc.fq_name));
            let mut cells = row.split(" | ");
            assert_eq!(cells.next(), Some(kind), "{}'s type", desc.fq_name);
            let labels = cells.next().unwrap_or_default();
            for label in &desc.variable_labels {
                assert!(labels.contains(label.as_str()), "{}: {label}", desc.fq_name);
            }
            if desc.variable_labels.is_empty() {
                assert_eq!(labels, "—", "{} has no labels", desc.fq_name);
            }
            names.push(desc.fq_name.clone());
        }
    }
    let count = names.len();
    names.sort();
    names.dedup();
    assert_eq!(names.len(), count, "a metric is declared twice");
}
