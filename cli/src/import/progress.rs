//! Progress of an import: a bar per table on a terminal (indicatif), one JSON line per table
//! otherwise (import.md §2), nothing in tests.

use std::{collections::HashMap, sync::Mutex};

use indicatif::{ProgressBar, ProgressStyle};

use super::report::TableReport;

/// What the import tells about its progress.
pub trait Progress: Send + Sync {
    fn start(&self, table: &str, total: u64);
    fn advance(&self, table: &str, rows: u64);
    fn finish(&self, report: &TableReport);
}

/// Says nothing.
pub struct Quiet;

impl Progress for Quiet {
    fn start(&self, _: &str, _: u64) {}
    fn advance(&self, _: &str, _: u64) {}
    fn finish(&self, _: &TableReport) {}
}

/// One JSON line per finished table on standard output (logs, CI).
pub struct JsonLines;

impl Progress for JsonLines {
    fn start(&self, _: &str, _: u64) {}
    fn advance(&self, _: &str, _: u64) {}
    fn finish(&self, report: &TableReport) {
        if let Ok(line) = serde_json::to_string(report) {
            println!("{line}");
        }
    }
}

/// A bar per table on standard error.
#[derive(Default)]
pub struct Bars {
    bars: Mutex<HashMap<String, ProgressBar>>,
}

impl Progress for Bars {
    fn start(&self, table: &str, total: u64) {
        let bar = ProgressBar::new(total);
        if let Ok(style) = ProgressStyle::with_template(
            "{prefix:<22} [{bar:30}] {pos:>9}/{len:9} {per_sec:>12} eta {eta}",
        ) {
            bar.set_style(style.progress_chars("=> "));
        }
        bar.set_prefix(table.to_owned());
        if let Ok(mut bars) = self.bars.lock() {
            bars.insert(table.to_owned(), bar);
        }
    }

    fn advance(&self, table: &str, rows: u64) {
        if let Ok(bars) = self.bars.lock()
            && let Some(bar) = bars.get(table)
        {
            bar.inc(rows);
        }
    }

    fn finish(&self, report: &TableReport) {
        if let Ok(mut bars) = self.bars.lock()
            && let Some(bar) = bars.remove(&report.table)
        {
            bar.finish();
        }
    }
}
