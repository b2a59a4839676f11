//! Apache Spark: a scenario's pipeline and micro-batch configuration as a generated PySpark
//! script, and the contract between that script and the driver that runs it.
//!
//! streamlab does not rewrite a pipeline by hand for Spark: [`PySparkScript::translate`] writes
//! it out — filter, lookup join (a broadcast join against the campaign table), projection or
//! key-by, window (`window` / `session_window` on the event time, with `withWatermark`) and
//! aggregate, the trigger, output mode, `local[N]` and shuffle partitions — or refuses, naming
//! the key, what Spark cannot run as described ([`SparkRefusal`]). The script is kept in the
//! run's directory, so a user can read it and rerun it.
//!
//! The contract with the driver:
//! * **Arguments** ([`ScriptArgs`]): the feeder's and receiver's addresses, the run's token, the
//!   number of source partitions, the campaign table's file ([`write_campaign_table`]), the
//!   progress file and the checkpoint directory; optionally a master URL.
//! * **Source**: the script reads the feeder with a Python data source (Spark 4's
//!   `DataSourceStreamReader`), one connection per source partition opened when the query
//!   starts, each presenting the token. The built-in `socket` source cannot present a token and
//!   reads one connection only. Spark runs Python data sources through Arrow, so the venv needs
//!   pyspark's `sql` extra (pyarrow, pandas, numpy), not pyspark alone.
//! * **Sink**: `foreachBatch` sends every output row to the receiver, one CSV line each, columns
//!   [`sink_columns`]: the columns of streamlab's own sink file without the two streamlab stamps
//!   on receipt (`delivered_ms`, `latency_ms`), then `origin_arrival_ns`, the scheduled arrival
//!   latency is measured from (the event's, or a window's last contributing event's). Sending is
//!   not idempotent by batch id yet: a batch Spark replays after a failure is sent twice.
//! * **Progress**: every `StreamingQueryProgress` is appended to the progress file as one JSON
//!   line, Spark's own measurements for `progress.jsonl`.
//! * **End**: `once` and `available_now` queries end by themselves; others stop once a batch has
//!   read every row the feeder sent, or when the driver ends the process group.

mod refusal;
mod translate;

use std::ffi::OsString;
use std::io::{self, Write};
use std::net::SocketAddr;
use std::path::PathBuf;

use streamlab_engines::dimension::CampaignTable;
use streamlab_engines::pipeline::PipelineSpec;

pub use refusal::{check, RefusedTable, SparkRefusal};
pub use translate::{PySparkScript, SparkJob};

/// The columns of each row the script sends to the receiver, in order.
pub fn sink_columns(pipeline: &PipelineSpec) -> Vec<&'static str> {
    let mut cols = if pipeline.is_stateful() {
        vec!["key", "window_start_ms", "window_end_ms", "count", "value", "is_update"]
    } else {
        pipeline.project.iter().map(|f| f.name()).collect()
    };
    cols.push("origin_arrival_ns");
    cols
}

/// Writes the campaign table as the script reads it: CSV with the header `ad,campaign`, one row
/// per ad in the table.
pub fn write_campaign_table(table: &CampaignTable, out: &mut impl Write) -> io::Result<()> {
    writeln!(out, "ad,campaign")?;
    for ad in 0..table.len() as u32 {
        if let Some(campaign) = table.campaign(ad) {
            writeln!(out, "{ad},{campaign}")?;
        }
    }
    Ok(())
}

/// The run-specific arguments of a generated script.
#[derive(Clone, Debug)]
pub struct ScriptArgs {
    /// The feeder's address.
    pub feeder: SocketAddr,
    /// The receiver's address.
    pub receiver: SocketAddr,
    /// The run's token (passed on the command line, never written into the script).
    pub token: String,
    /// Source partitions: one feeder connection each.
    pub partitions: u32,
    /// The campaign table's file ([`write_campaign_table`]).
    pub campaigns: PathBuf,
    /// The file each query progress is appended to, one JSON line each.
    pub progress: PathBuf,
    /// The query's checkpoint directory.
    pub checkpoint: PathBuf,
    /// A master URL instead of the translated `local[workers]` (e.g. `spark://host:7077`).
    pub master: Option<String>,
}

impl ScriptArgs {
    /// The command-line arguments, after the script's path.
    pub fn to_args(&self) -> Vec<OsString> {
        let mut args: Vec<OsString> = vec![
            "--feeder".into(),
            self.feeder.to_string().into(),
            "--receiver".into(),
            self.receiver.to_string().into(),
            "--token".into(),
            self.token.clone().into(),
            "--partitions".into(),
            self.partitions.to_string().into(),
            "--campaigns".into(),
            self.campaigns.clone().into(),
            "--progress".into(),
            self.progress.clone().into(),
            "--checkpoint".into(),
            self.checkpoint.clone().into(),
        ];
        if let Some(master) = &self.master {
            args.push("--master".into());
            args.push(master.into());
        }
        args
    }
}
