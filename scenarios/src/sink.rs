//! Sink files: what each engine run delivered, written while it runs so long runs do not hold
//! their outputs in memory.
//!
//! A run's sink either streams into `sink-<run>.csv` ([`SinkCsv`]), or — when the engine's sink
//! is durable (every micro-batch query; a live per-record job with an exactly-once sink) — writes
//! one file per batch or committed transaction under `sink-<run>.parts/`, joined into
//! `sink-<run>.csv` at the end ([`assemble_parts`]). [`SinkFiles`] keeps one of the two per
//! engine run. The file names are [`ResultsLayout`]'s.

use std::fs::{self, File};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use streamlab_engines::checkpoint::WriteBehind;
use streamlab_engines::operators::Output;
use streamlab_engines::pipeline::OutputShape;
use streamlab_engines::pipeline::{field_value, Field, PipelineSpec};
use streamlab_engines::run::Delivered;
use streamlab_engines::time::as_ms;
use streamlab_reports::layout::ResultsLayout;

use crate::engine::EngineSpec;
use crate::error_run::{Result, RunError};
use crate::executor::executor;
use crate::spec::{Scenario, SinkKind};
use crate::validate::CanonicalOutput;

/// The sink files of one scenario run's engines, by engine index.
pub struct SinkFiles {
    layout: ResultsLayout,
    /// Per engine, its CSV (with its header; replaced by the joined parts at the end when the
    /// engine writes parts).
    csv: Vec<SinkCsv>,
    /// Per engine, whether it writes parts.
    parted: Vec<bool>,
    names: Vec<String>,
}

impl SinkFiles {
    /// Creates the sink file of each of `engines`; `live`: on the live clock.
    pub fn create(
        layout: &ResultsLayout,
        engines: &[&EngineSpec],
        pipeline: &PipelineSpec,
        live: bool,
    ) -> Result<Self> {
        let csv = engines
            .iter()
            .map(|e| SinkCsv::create(&layout.sink(&e.name), pipeline))
            .collect::<Result<Vec<_>>>()?;
        // Micro-batch queries write their sink batch by batch, and live per-record jobs with an
        // exactly-once sink transaction by transaction (durable, idempotent); the others stream
        // into their CSV.
        let parted = engines
            .iter()
            .map(|e| executor(&e.kind).writes_sink_parts(live))
            .collect();
        Ok(Self {
            layout: layout.clone(),
            csv,
            parted,
            names: engines.iter().map(|e| e.name.clone()).collect(),
        })
    }

    /// Appends what engine `i` delivered (an engine writing parts has written them already).
    pub fn write(&mut self, i: usize, delivered: &[Delivered]) -> Result<()> {
        if self.parted[i] {
            Ok(())
        } else {
            self.csv[i].write(delivered)
        }
    }

    /// Closes the files and joins the parts of the engines that write them.
    pub fn finish(self, pipeline: &PipelineSpec) -> Result<()> {
        for csv in self.csv {
            csv.finish()?;
        }
        for (name, _) in self.names.iter().zip(&self.parted).filter(|(_, p)| **p) {
            assemble_parts(&self.layout, name, pipeline)?;
        }
        Ok(())
    }
}

/// What a run does with each chunk its engines deliver: written to their sink files (unless
/// the scenario's sink discards) and, when `checked`, folded into each engine's
/// [`CanonicalOutput`] for the reference check. One owner, so that a `repeat` run's measurement
/// rounds ([`crate::rounds`]) do exactly the work its kept run does.
pub struct RunOutputs {
    files: SinkFiles,
    canonical: Vec<CanonicalOutput>,
    checked: bool,
    discard: bool,
}

impl RunOutputs {
    /// The outputs of `engines` in a run of `scenario` whose files go under `layout`; `live`: on
    /// the live clock; `checked`: the outputs are checked against the reference evaluator.
    pub fn create(
        layout: &ResultsLayout,
        engines: &[&EngineSpec],
        scenario: &Scenario,
        live: bool,
        checked: bool,
    ) -> Result<Self> {
        Ok(Self {
            files: SinkFiles::create(layout, engines, &scenario.pipeline, live)?,
            canonical: engines.iter().map(|_| CanonicalOutput::default()).collect(),
            checked,
            discard: scenario.sink == SinkKind::Discard,
        })
    }

    /// Takes what engine `i` delivered.
    pub fn add(&mut self, i: usize, delivered: &[Delivered]) -> Result<()> {
        if self.checked {
            self.canonical[i].add(delivered);
        }
        if self.discard {
            return Ok(());
        }
        self.files.write(i, delivered)
    }

    /// Closes the sink files (see [`SinkFiles::finish`]); returns each engine's outputs as the
    /// reference check reads them (empty unless `checked`).
    pub fn finish(self, pipeline: &PipelineSpec) -> Result<Vec<CanonicalOutput>> {
        self.files.finish(pipeline)?;
        Ok(self.canonical)
    }
}

/// Creates `path` for buffered writing.
pub(crate) fn create(path: &Path) -> Result<BufWriter<File>> {
    File::create(path).map(BufWriter::new).map_err(|e| RunError::Io {
        path: path.to_path_buf(),
        source: e,
    })
}

/// Writes a sink's records as CSV while the engine delivers them: the projected columns of a
/// stateless pipeline, or the window results of a stateful one, each with its delivery time
/// and latency.
pub struct SinkCsv {
    path: PathBuf,
    out: BufWriter<File>,
    project: Vec<Field>,
}

impl SinkCsv {
    /// Creates the file and writes its header.
    pub fn create(path: &Path, pipeline: &PipelineSpec) -> Result<Self> {
        let mut out = create(path)?;
        let header = Self::header(pipeline);
        writeln!(out, "{header}").map_err(|e| RunError::Io {
            path: path.to_path_buf(),
            source: e,
        })?;
        Ok(Self {
            path: path.to_path_buf(),
            out,
            project: pipeline.project.clone(),
        })
    }

    /// The CSV header of a pipeline's sink records.
    pub fn header(pipeline: &PipelineSpec) -> String {
        match pipeline.output_shape() {
            OutputShape::Windows => {
                "delivered_ms,key,window_start_ms,window_end_ms,count,value,is_update,latency_ms".to_string()
            }
            OutputShape::Records => {
                "delivered_ms,shape,left_seq,right_seq,left_time_ms,right_time_ms,window_start_ms,window_end_ms,latency_ms"
                    .to_string()
            }
            OutputShape::Rows => {
                let cols: Vec<&str> = pipeline.project.iter().map(|f| f.name()).collect();
                format!("delivered_ms,{},latency_ms", cols.join(","))
            }
        }
    }

    /// Appends records.
    pub fn write(&mut self, delivered: &[Delivered]) -> Result<()> {
        Self::rows(&mut self.out, &self.project, delivered).map_err(|e| RunError::Io {
            path: self.path.clone(),
            source: e,
        })
    }

    /// Writes records as CSV rows (no header) for a sink projecting `project`.
    pub fn rows(w: &mut impl Write, project: &[Field], delivered: &[Delivered]) -> std::io::Result<()> {
        for d in delivered {
            match &d.output {
                Output::Row(r) => {
                    write!(w, "{:.3}", as_ms(d.at))?;
                    for &f in project {
                        if f == Field::Kind {
                            write!(w, ",{}", r.event.kind.name())?;
                        } else {
                            write!(w, ",{}", field_value(&r.event, r.campaign, f))?;
                        }
                    }
                    writeln!(w, ",{:.3}", as_ms(d.at.saturating_sub(r.lineage.arrival)))?;
                }
                Output::Window(r) => writeln!(
                    w,
                    "{:.3},{},{},{},{},{},{},{:.3}",
                    as_ms(d.at),
                    r.key,
                    r.start,
                    r.end,
                    r.count,
                    r.value,
                    r.is_update,
                    as_ms(d.at.saturating_sub(r.origin.arrival))
                )?,
                Output::Record(r) => {
                    let (shape, left, right, _) = r.identity();
                    let seq = |s: u64| if s == u64::MAX { String::new() } else { s.to_string() };
                    let time = |present: bool, t: i64| if present { t.to_string() } else { String::new() };
                    writeln!(
                        w,
                        "{:.3},{},{},{},{},{},{},{},{:.3}",
                        as_ms(d.at),
                        shape.name(),
                        seq(left),
                        seq(right),
                        time(left != u64::MAX, r.left.event_time),
                        time(right != u64::MAX, r.right.event_time),
                        r.start,
                        r.end,
                        as_ms(d.at.saturating_sub(r.origin.arrival))
                    )?
                }
            }
        }
        Ok(())
    }

    /// Flushes and closes the file.
    pub fn finish(mut self) -> Result<()> {
        self.out.flush().map_err(|e| RunError::Io {
            path: self.path.clone(),
            source: e,
        })
    }
}

/// The durable sink: each batch's output (micro-batch) or each committed transaction
/// (per-record, exactly-once) goes to its own file, `sink-<run>.parts/<id>.csv`, written under a
/// temporary name and renamed — so a batch replayed after a crash replaces its file instead of
/// appending twice (Spark's file sink writes one file set per batch the same way).
/// [`assemble_parts`] joins them into `sink-<run>.csv` at the end of the run. This is the
/// directory of those files.
pub fn parts_dir(dir: &Path, run: &str) -> PathBuf {
    ResultsLayout::new(dir).sink_parts(run)
}

/// Writes each committed transaction (or batch) of a run to its own file under [`parts_dir`].
pub fn part_writer(
    dir: &Path,
    run: &str,
    pipeline: &PipelineSpec,
) -> impl FnMut(u64, &[Delivered]) -> std::io::Result<()> + Send + 'static {
    let parts = parts_dir(dir, run);
    let project = pipeline.project.clone();
    move |id, delivered| {
        fs::create_dir_all(&parts)?;
        let path = ResultsLayout::sink_part(&parts, id);
        let tmp = path.with_extension("tmp");
        let mut out = BufWriter::new(File::create(&tmp)?);
        SinkCsv::rows(&mut out, &project, delivered)?;
        out.into_inner().map_err(|e| e.into_error())?.sync_data()?;
        fs::rename(&tmp, &path)
    }
}

/// [`part_writer`] for a micro-batch query (one file per batch id).
pub fn batch_file_writer(dir: &Path, run: &str, pipeline: &PipelineSpec) -> streamlab_engines::microbatch::SinkWriter {
    streamlab_engines::microbatch::SinkWriter(Box::new(part_writer(dir, run, pipeline)))
}

/// [`batch_file_writer`] whose files `writer`'s thread writes, in order, while the query goes
/// on (a simulated run: see [`WriteBehind`]). The rows are formatted here, in the batch's turn;
/// the file, its sync and rename are the same. A failed file is reported by a later batch's
/// write or by [`WriteBehind::settle`].
pub fn batch_file_writer_behind(
    dir: &Path,
    run: &str,
    pipeline: &PipelineSpec,
    writer: Arc<WriteBehind>,
) -> streamlab_engines::microbatch::SinkWriter {
    let parts = parts_dir(dir, run);
    let project = pipeline.project.clone();
    streamlab_engines::microbatch::SinkWriter(Box::new(move |id, delivered: &[Delivered]| {
        let mut bytes = Vec::new();
        SinkCsv::rows(&mut bytes, &project, delivered)?;
        writer
            .write(ResultsLayout::sink_part(&parts, id), bytes, true)
            .map_err(|(path, e)| std::io::Error::new(e.kind(), format!("{}: {e}", path.display())))
    }))
}

/// Joins a run's batch files, in batch order, into `sink-<run>.csv`.
pub fn assemble_parts(layout: &ResultsLayout, run: &str, pipeline: &PipelineSpec) -> Result<()> {
    let parts = layout.sink_parts(run);
    let target = layout.sink(run);
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |e| RunError::Io { path, source: e }
    };
    let mut files: Vec<PathBuf> = match fs::read_dir(&parts) {
        Ok(entries) => entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "csv"))
            .collect(),
        Err(_) => Vec::new(),
    };
    files.sort();
    let tmp = target.with_extension("csv.tmp");
    let mut out = create(&tmp)?;
    writeln!(out, "{}", SinkCsv::header(pipeline)).map_err(io(&tmp))?;
    for f in files {
        let bytes = fs::read(&f).map_err(io(&f))?;
        out.write_all(&bytes).map_err(io(&tmp))?;
    }
    out.flush().map_err(io(&tmp))?;
    drop(out);
    fs::rename(&tmp, &target).map_err(io(&target))
}
