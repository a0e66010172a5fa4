//! Writing Prometheus' text exposition format: `# HELP`/`# TYPE` lines, then
//! samples `name{label="value",...} value`, label values escaped.

use std::fmt::Write as _;

/// Appends families and samples to a string.
pub struct Exposition<'a> {
    out: &'a mut String,
}

impl<'a> Exposition<'a> {
    /// Writes into `out`.
    pub fn new(out: &'a mut String) -> Self {
        Exposition { out }
    }

    /// Starts a family: its help text and type (`counter`, `gauge`, ...).
    /// Samples of one family must follow it, before the next family.
    pub fn family(&mut self, name: &str, kind: &str, help: &str) {
        debug_assert!(valid_name(name), "invalid metric name {name}");
        // Help text escapes only backslash and newline.
        let help = help.replace('\\', "\\\\").replace('\n', "\\n");
        // Writing to a String cannot fail.
        let _ = writeln!(self.out, "# HELP {name} {help}\n# TYPE {name} {kind}");
    }

    /// One sample.
    pub fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: f64) {
        self.out.push_str(name);
        write_labels(self.out, labels);
        self.value(value);
    }

    /// One sample whose labels were rendered before ([`Labels`]): a
    /// partition's labels are escaped once per scrape, not once per family.
    pub fn sample_labelled(&mut self, name: &str, labels: &Labels, value: f64) {
        self.out.push_str(name);
        self.out.push_str(&labels.0);
        self.value(value);
    }

    fn value(&mut self, value: f64) {
        self.out.push(' ');
        if value.is_nan() {
            self.out.push_str("NaN");
        } else if value.is_infinite() {
            self.out.push_str(if value > 0.0 { "+Inf" } else { "-Inf" });
        } else if value.fract() == 0.0 && value.abs() < 9.0e15 {
            // Integral values print without an exponent or a fraction.
            let _ = write!(self.out, "{}", value as i64);
        } else {
            let _ = write!(self.out, "{value}");
        }
        self.out.push('\n');
    }
}

/// A label set rendered once, `{k="v",...}` (empty for no labels), for
/// samples of several families that share it.
pub struct Labels(String);

impl Labels {
    pub fn new(labels: &[(&str, &str)]) -> Labels {
        let mut s = String::new();
        write_labels(&mut s, labels);
        Labels(s)
    }
}

fn write_labels(out: &mut String, labels: &[(&str, &str)]) {
    if labels.is_empty() {
        return;
    }
    out.push('{');
    for (i, (k, v)) in labels.iter().enumerate() {
        debug_assert!(valid_name(k), "invalid label name {k}");
        if i > 0 {
            out.push(',');
        }
        out.push_str(k);
        out.push_str("=\"");
        escape_label_value(out, v);
        out.push('"');
    }
    out.push('}');
}

impl Exposition<'_> {
    /// A histogram's `_bucket`, `_sum` and `_count` samples.
    pub fn histogram(&mut self, name: &str, labels: &[(&str, &str)], h: &kaskade_types::HistogramSnapshot) {
        let bucket = format!("{name}_bucket");
        let bounds: Vec<String> = h.cumulative.iter().map(|(bound, _)| bound.to_string()).collect();
        let les = bounds.iter().map(String::as_str).chain(std::iter::once("+Inf"));
        let counts = h.cumulative.iter().map(|(_, n)| *n).chain(std::iter::once(h.count));
        for (le, n) in les.zip(counts) {
            let mut l: Vec<(&str, &str)> = labels.to_vec();
            l.push(("le", le));
            self.sample(&bucket, &l, n as f64);
        }
        self.sample(&format!("{name}_sum"), labels, h.sum_seconds);
        self.sample(&format!("{name}_count"), labels, h.count as f64);
    }
}

fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

/// Label values escape backslash, double quote and newline.
fn escape_label_value(out: &mut String, v: &str) {
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_are_written_and_label_values_escaped() {
        let mut s = String::new();
        let mut x = Exposition::new(&mut s);
        x.family("a_total", "counter", "Line one\nback\\slash.");
        x.sample("a_total", &[], 3.0);
        x.sample("a_total", &[("topic", "we\"ird\\na\nme"), ("partition", "0")], 0.5);
        x.sample("a_total", &[("p", "x")], f64::INFINITY);
        assert_eq!(
            s,
            "# HELP a_total Line one\\nback\\\\slash.\n# TYPE a_total counter\na_total 3\n\
             a_total{topic=\"we\\\"ird\\\\na\\nme\",partition=\"0\"} 0.5\na_total{p=\"x\"} +Inf\n"
        );
        // Labels rendered once write the same text.
        let mut once = String::new();
        let mut x = Exposition::new(&mut once);
        x.sample_labelled("a_total", &Labels::new(&[("topic", "we\"ird\\na\nme"), ("partition", "0")]), 0.5);
        x.sample_labelled("a_total", &Labels::new(&[]), 3.0);
        assert_eq!(once, "a_total{topic=\"we\\\"ird\\\\na\\nme\",partition=\"0\"} 0.5\na_total 3\n");
    }
}
