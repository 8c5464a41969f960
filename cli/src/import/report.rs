//! What an import did, per table: read, imported, already present, skipped by reason — the
//! JSON report (`--report FILE`), the terminal summary and the exit code (import.md §2).

use std::{collections::BTreeMap, fmt::Write as _};

use serde::Serialize;

/// How many skipped rows a table report names by id (the counts cover all of them).
const EXAMPLES: usize = 20;

#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TableReport {
    pub table: String,
    pub read: u64,
    pub imported: u64,
    /// Rows whose id the target already holds (an earlier or interrupted run).
    pub already_present: u64,
    pub skipped: u64,
    pub skipped_by_reason: BTreeMap<String, u64>,
    /// The first skipped rows: `{id, reason}`.
    pub skipped_examples: Vec<Skip>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Skip {
    pub id: String,
    pub reason: String,
}

impl TableReport {
    pub fn new(table: &str) -> Self {
        TableReport {
            table: table.to_owned(),
            ..TableReport::default()
        }
    }

    pub fn skip(&mut self, id: &str, reason: &str) {
        self.skipped += 1;
        *self.skipped_by_reason.entry(reason.to_owned()).or_default() += 1;
        if self.skipped_examples.len() < EXAMPLES {
            self.skipped_examples.push(Skip {
                id: id.to_owned(),
                reason: reason.to_owned(),
            });
        }
    }
}

#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    pub dry_run: bool,
    pub tables: Vec<TableReport>,
    pub seconds: f64,
    pub rows_read: u64,
    pub rows_per_second: f64,
}

impl Report {
    pub fn skipped(&self) -> u64 {
        self.tables.iter().map(|t| t.skipped).sum()
    }

    pub fn imported(&self) -> u64 {
        self.tables.iter().map(|t| t.imported).sum()
    }

    /// import.md §2: 0 when nothing was skipped, 3 when rows were skipped.
    pub fn exit_code(&self) -> i32 {
        if self.skipped() == 0 { 0 } else { 3 }
    }

    pub fn table(&self, name: &str) -> Option<&TableReport> {
        self.tables.iter().find(|t| t.table == name)
    }

    /// The terminal summary: one line per table, then the total.
    pub fn summary(&self) -> String {
        let mut out = String::new();
        for t in &self.tables {
            let reasons: Vec<String> = t
                .skipped_by_reason
                .iter()
                .map(|(r, n)| format!("{r} {n}"))
                .collect();
            let _ = writeln!(
                out,
                "{:<22} read {:>9}  imported {:>9}  already there {:>9}  skipped {:>6}{}",
                t.table,
                t.read,
                t.imported,
                t.already_present,
                t.skipped,
                if reasons.is_empty() {
                    String::new()
                } else {
                    format!(" ({})", reasons.join(", "))
                }
            );
        }
        let _ = write!(
            out,
            "{} rows read in {:.1} s ({:.0} rows/s){}",
            self.rows_read,
            self.seconds,
            self.rows_per_second,
            if self.dry_run {
                ", dry run: nothing written"
            } else {
                ""
            }
        );
        out
    }
}
