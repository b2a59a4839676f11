//! Reading a scenario file into a validated [`Scenario`], with errors that name the file, the
//! line and the dotted key path (see [`crate::error`]).
//!
//! # How errors find their line
//!
//! The file is parsed once with `toml_edit`, which keeps the byte span of every key and value.
//! Each section is deserialized with serde from its parsed (still spanned) table, so the
//! components' `deny_unknown_fields` applies and a serde error carries the span of the key or
//! value at fault; that span is mapped back to a key path by walking the document. Errors of
//! the components' own `validate()` come with a key relative to their table; the path is
//! prefixed with the table's and its line looked up in the document (falling back to the
//! nearest enclosing key that exists).

use std::collections::HashMap;
use std::ops::Range;
use std::path::Path;

use serde::de::{DeserializeOwned, IntoDeserializer};
use streamlab_engines::cluster::Cluster;
use streamlab_engines::dataflow::DataflowConfig;
use streamlab_engines::microbatch::MicroBatchConfig;
use streamlab_engines::pipeline::PipelineSpec;
use streamlab_engines::time::Span;
use streamlab_real_engines::kafka_streams::KafkaStreamsConfig;
use streamlab_real_engines::spark::RefusedTable;
use streamlab_workloads::{ClickstreamConfig, NexmarkWorkload};
use toml_edit::{DocumentMut, ImDocument, Item, Table, TableLike, Value};

use crate::engine::{EngineKind, EngineSpec};
use crate::error::{Result, ScenarioError};
use crate::failures::FailureSpec;
use crate::keypath::Segment;
use crate::profile::load_profile;
use crate::real_engine::{RealEngine, RealSettings};
use crate::spec::{Scenario, SinkKind, Slo, WorkloadSpec};
use crate::sweep::SweepParam;
use crate::transport::Transport;

/// The keys allowed at the top level of a scenario file.
const TOP_LEVEL_KEYS: [&str; 16] = [
    "slo",
    "sweep",
    "failure",
    "name",
    "description",
    "seed",
    "duration",
    "drain",
    "clock",
    "sink",
    "profile",
    "repeat",
    "cluster",
    "workload",
    "pipeline",
    "engine",
];

/// The keys of `[workload.nexmark]` (`NexmarkConfig`), for messages.
const NEXMARK_KEYS: [&str; 11] = [
    "person_proportion",
    "auction_proportion",
    "bid_proportion",
    "num_active_people",
    "num_in_flight_auctions",
    "hot_auction_ratio",
    "hot_sellers_ratio",
    "hot_bidders_ratio",
    "out_of_order_group_size",
    "prob_delayed_event",
    "occasional_delay",
];

impl Scenario {
    /// Reads and validates the scenario file at `path`.
    pub fn load(path: &Path) -> Result<Scenario> {
        let text = std::fs::read_to_string(path).map_err(|source| ScenarioError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        Self::parse(path, &text)
    }

    /// Parses and validates scenario `text`; `path_for_messages` is named in errors, stored as
    /// [`Scenario::path`], and is what a trace path is resolved against.
    ///
    /// # Examples
    /// ```
    /// use std::path::Path;
    /// use streamlab_scenarios::spec::Scenario;
    ///
    /// let text = r#"
    /// name = "tiny"
    /// duration = "1s"
    /// [[engine]]
    /// name = "mb"
    /// model = "micro-batch"
    /// "#;
    /// let scenario = Scenario::parse(Path::new("tiny.toml"), text).unwrap();
    /// assert_eq!(scenario.engines[0].model(), "micro-batch");
    ///
    /// let err = Scenario::parse(Path::new("tiny.toml"), "name = \"x\"\nsede = 1\n").unwrap_err();
    /// assert!(err.to_string().starts_with("tiny.toml:2: key `sede`: unknown key"));
    /// ```
    pub fn parse(path_for_messages: &Path, text: &str) -> Result<Scenario> {
        let doc = ImDocument::parse(text).map_err(|e| {
            let start = e.span().map_or(0, |s| s.start);
            let (line, column) = line_and_column(text, start);
            ScenarioError::Syntax {
                path: path_for_messages.to_path_buf(),
                line,
                column,
                message: one_line(e.message()),
            }
        })?;
        Reader {
            path: path_for_messages,
            text,
            root: doc.as_table(),
        }
        .scenario()
    }
}

/// Reads one parsed document; knows the text, so it can turn spans into lines.
struct Reader<'a> {
    path: &'a Path,
    text: &'a str,
    root: &'a Table,
}

impl Reader<'_> {
    fn scenario(&self) -> Result<Scenario> {
        self.check_keys("", self.root, &TOP_LEVEL_KEYS)?;

        let name: String = self.top("name")?.ok_or_else(|| {
            self.missing(
                "name",
                "missing; every scenario needs a name, e.g. name = \"quickstart\"",
            )
        })?;
        if name.trim().is_empty() {
            return Err(self.at("name", "must not be empty"));
        }
        let description: Option<String> = self.top("description")?;
        if description.as_deref().is_some_and(|d| d.contains('\n')) {
            return Err(self.at("description", "must be a single line"));
        }
        let seed = self.top("seed")?.unwrap_or(Scenario::DEFAULT_SEED);
        let duration: Span = self.top("duration")?.ok_or_else(|| {
            self.missing(
                "duration",
                "missing; say how long events arrive, e.g. duration = \"10s\"",
            )
        })?;
        if duration.nanos() == 0 {
            return Err(self.at("duration", "must be greater than 0, e.g. \"10s\""));
        }
        let drain = self.top("drain")?.unwrap_or(Scenario::DEFAULT_DRAIN);
        let clock = self.top("clock")?.unwrap_or_default();
        let sink: SinkKind = self.top("sink")?.unwrap_or_default();
        let profile: String = self
            .top("profile")?
            .unwrap_or_else(|| Scenario::DEFAULT_PROFILE.to_string());
        if profile.trim().is_empty() {
            return Err(self.at(
                "profile",
                "must name a built-in profile (e.g. \"local\") or a profile file",
            ));
        }
        if self.root.contains_key("profile") {
            let base = self.path.parent().unwrap_or(Path::new(""));
            load_profile(&profile, base).map_err(|e| self.at("profile", e.to_string()))?;
        }
        let cluster: Cluster = self.top("cluster")?.unwrap_or_default();
        let slo: Option<Slo> = self.top("slo")?;
        if let Some(slo) = &slo {
            slo.validate()
                .map_err(|(key, message)| self.at(&format!("slo.{key}"), message))?;
        }
        cluster
            .validate()
            .map_err(|(key, message)| self.at(&format!("cluster.{key}"), message))?;
        let workload = self.workload()?;
        let transport = self.transport()?;
        let pipeline = self.pipeline()?;
        let engines = self.engines(&pipeline)?;
        self.check_transport(&transport, &engines)?;
        let failures: Vec<FailureSpec> = match self.root.get("failure") {
            None => Vec::new(),
            Some(Item::ArrayOfTables(tables)) => tables
                .iter()
                .enumerate()
                .map(|(i, t)| self.de(&format!("failure[{i}]"), &Item::Table(t.clone()), None))
                .collect::<Result<_>>()?,
            Some(_) => {
                return Err(self.at(
                    "failure",
                    "must be written as `[[failure]]` tables, one per injected failure",
                ))
            }
        };
        if sink == SinkKind::Discard && !failures.is_empty() {
            return Err(self.at(
                "sink",
                "\"discard\" keeps no output to count an injected failure's duplicates and losses in; use \"file\" (the default) with [[failure]]",
            ));
        }
        for (i, f) in failures.iter().enumerate() {
            f.validate(&engines)
                .map_err(|(key, message)| self.at(&format!("failure[{i}].{key}"), message))?;
        }

        let repeat = self.repeat(&failures, &transport)?;
        let sweep = self.sweep()?;

        Ok(Scenario {
            path: self.path.to_path_buf(),
            name,
            description,
            seed,
            duration,
            drain,
            clock,
            sink,
            profile,
            cluster,
            slo,
            failures,
            workload,
            transport,
            pipeline,
            engines,
            sweep,
            repeat,
            source_text: self.text.to_owned(),
        })
    }

    /// `repeat`: 1 when absent; more only where a round can be run again as it was.
    fn repeat(&self, failures: &[FailureSpec], transport: &Transport) -> Result<u32> {
        let repeat: i64 = self.top("repeat")?.unwrap_or(1);
        if !(1..=i64::from(Scenario::MAX_REPEAT)).contains(&repeat) {
            return Err(self.at(
                "repeat",
                format!(
                    "{repeat} is out of range; must be 1 to {} (the rounds of native engine runs whose median throughput is reported)",
                    Scenario::MAX_REPEAT
                ),
            ));
        }
        if repeat > 1 && !failures.is_empty() {
            return Err(self.at(
                "repeat",
                "measurement rounds repeat a failure-free run, and a [[failure]] makes the run a recovery measurement: \
                 remove `repeat` or the [[failure]] tables",
            ));
        }
        if repeat > 1 && transport.is_kafka() {
            return Err(self.at(
                "repeat",
                "a run on `transport = \"kafka\"` reads topics of its own broker once: measurement rounds need the \
                 loopback transport (remove `transport` from [workload]) or repeat = 1",
            ));
        }
        Ok(repeat as u32)
    }

    /// A top-level key, deserialized if present.
    fn top<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>> {
        self.root.get(key).map(|item| self.de(key, item, None)).transpose()
    }

    fn workload(&self) -> Result<WorkloadSpec> {
        let Some(item) = self.root.get("workload") else {
            return Ok(WorkloadSpec::Clickstream(ClickstreamConfig::default()));
        };
        let Some(table) = item.as_table_like() else {
            return Err(self.at(
                "workload",
                "must be a table: `[workload]` with the generator's keys, or `trace = \"file.csv\"`",
            ));
        };
        if let Some(trace) = table.get("trace") {
            if let Some((other, _)) = table
                .iter()
                .find(|(k, _)| *k != "trace" && !crate::transport::KEYS.contains(k))
            {
                return Err(self.at(
                    &format!("workload.{other}"),
                    format!(
                        "`trace` replays a recorded trace instead of running the generator, so it \
                         must be the only key in [workload]; remove `{other}` or `trace`"
                    ),
                ));
            }
            let relative: String = self.de("workload.trace", trace, None)?;
            if relative.trim().is_empty() {
                return Err(self.at("workload.trace", "must be a file path, e.g. \"traces/day1.csv\""));
            }
            let base = self.path.parent().unwrap_or(Path::new(""));
            return Ok(WorkloadSpec::Trace {
                path: base.join(relative),
            });
        }
        let generator: String = match table.get("generator") {
            Some(g) => self.de("workload.generator", g, None)?,
            None => "clickstream".to_owned(),
        };
        let mut config = Table::new();
        for (key, value) in table
            .iter()
            .filter(|(k, _)| *k != "generator" && !crate::transport::KEYS.contains(k))
        {
            config.insert(key, value.clone());
        }
        let config = Item::Table(config);
        match generator.as_str() {
            "clickstream" => {
                if table.contains_key("nexmark") {
                    return Err(self.at(
                        "workload.nexmark",
                        "the [workload.nexmark] table configures the Nexmark generator; add \
                         generator = \"nexmark\" to [workload], or remove the table",
                    ));
                }
                let config: ClickstreamConfig = self.de(
                    "workload",
                    &config,
                    Some("plus `generator`; or `trace` alone, to replay a trace file"),
                )?;
                config
                    .validate()
                    .map_err(|e| self.at(&format!("workload.{}", e.key), e.message))?;
                Ok(WorkloadSpec::Clickstream(config))
            }
            "nexmark" => {
                let hint = format!(
                    "plus `generator` (Nexmark's own keys go in [workload.nexmark]: {})",
                    backticked_list(&NEXMARK_KEYS)
                );
                let config: NexmarkWorkload = self.de("workload", &config, Some(&hint))?;
                config
                    .validate()
                    .map_err(|e| self.at(&format!("workload.{}", e.key), e.message))?;
                Ok(WorkloadSpec::Nexmark(config))
            }
            other => Err(self.at(
                "workload.generator",
                format!(
                    "unknown generator \"{other}\"; expected one of {}",
                    quoted_list(&WorkloadSpec::GENERATORS)
                ),
            )),
        }
    }

    /// `[workload] transport` and `bootstrap_servers`.
    fn transport(&self) -> Result<Transport> {
        let table = self.root.get("workload").and_then(Item::as_table_like);
        let get = |key: &str| -> Result<Option<String>> {
            table
                .and_then(|t| t.get(key))
                .map(|item| self.de(&format!("workload.{key}"), item, None))
                .transpose()
        };
        Transport::read(get("transport")?.as_deref(), get("bootstrap_servers")?)
            .map_err(|(key, message)| self.at(&format!("workload.{key}"), message))
    }

    /// Kafka Streams reads only Kafka, and so does Spark's Real-Time Mode. `kill_at` (Spark's
    /// key for a kill once) is refused with the one spelling of a real engine's crash.
    fn check_transport(&self, transport: &Transport, engines: &[EngineSpec]) -> Result<()> {
        for (i, engine) in engines.iter().enumerate() {
            let kill_at = match &engine.kind {
                EngineKind::Spark(e) => e.settings.kill_at,
                EngineKind::Flink(e) => e.settings.kill_at,
                EngineKind::KafkaStreams(e) => e.settings.kill_at,
                _ => None,
            };
            if let Some(at) = kill_at {
                return Err(self.at(
                    &format!("engine[{i}].kill_at"),
                    format!(
                        "`kill_at` is no longer a key: a crash of a real engine (Spark, Flink or Kafka Streams, on \
                         `transport = \"kafka\"`) is a `[[failure]]` of kind = \"crash\" placed with `at`, as for \
                         every engine: remove the key and add a `[[failure]]` table with kind = \"crash\", at = \"{at}\", \
                         engine = \"{}\"",
                        engine.name
                    ),
                ));
            }
            match (&engine.kind, transport.is_kafka()) {
                (EngineKind::KafkaStreams(_), false) => {
                    return Err(self.at(
                        &format!("engine[{i}].model"),
                        "Kafka Streams reads a Kafka topic: add `transport = \"kafka\"` to [workload] (a broker of \
                         streamlab's own is started for the run, or set `bootstrap_servers`)",
                    ))
                }
                (EngineKind::Flink(flink), false) => {
                    streamlab_real_engines::flink::check_socket_sink(&flink.config)
                        .map_err(|e| self.refused(&format!("engine[{i}]"), false, &e.key, &e.reason, "Flink"))?;
                }
                (EngineKind::Spark(spark), false)
                    if matches!(spark.config.trigger, streamlab_engines::microbatch::Trigger::RealTime { .. }) =>
                {
                    return Err(self.at(
                        &format!("engine[{i}].trigger"),
                        "Spark's Real-Time Mode reads Kafka only (STREAMING_REAL_TIME_MODE.INPUT_STREAM_NOT_SUPPORTED for \
                         the feeder's Python data source): add `transport = \"kafka\"` to [workload]",
                    ))
                }
                _ => {}
            }
        }
        Ok(())
    }

    fn pipeline(&self) -> Result<PipelineSpec> {
        let Some(item) = self.root.get("pipeline") else {
            return Ok(PipelineSpec::default());
        };
        let pipeline: PipelineSpec = self.de("pipeline", item, None)?;
        pipeline
            .validate()
            .map_err(|e| self.at(&format!("pipeline.{}", e.key), e.message))?;
        Ok(pipeline)
    }

    fn engines(&self, pipeline: &PipelineSpec) -> Result<Vec<EngineSpec>> {
        let allowed_models = quoted_list(&EngineKind::MODELS);
        let tables = match self.root.get("engine") {
            None => {
                return Err(self.missing(
                    "engine",
                    format!(
                        "missing; a scenario needs at least one [[engine]] table with `name` and \
                         `model` ({allowed_models})"
                    ),
                ))
            }
            Some(Item::ArrayOfTables(tables)) => tables,
            Some(_) => {
                return Err(self.at(
                    "engine",
                    "must be an array of tables: write each engine as `[[engine]]`",
                ))
            }
        };

        let mut first_use: HashMap<String, usize> = HashMap::new();
        let mut engines = Vec::with_capacity(tables.len());
        for (i, table) in tables.iter().enumerate() {
            let at = format!("engine[{i}]");
            let name: String = match table.get("name") {
                Some(item) => self.de(&format!("{at}.name"), item, None)?,
                None => {
                    return Err(self.at(
                        &at,
                        "missing `name`; every engine needs a unique name, e.g. name = \"micro-batch 1s\"",
                    ))
                }
            };
            if name.trim().is_empty() {
                return Err(self.at(&format!("{at}.name"), "must not be empty"));
            }
            if let Some(first) = first_use.get(&name) {
                return Err(self.at(
                    &format!("{at}.name"),
                    format!(
                        "duplicate engine name \"{name}\" (engine[{first}] has it too); engine names must be unique"
                    ),
                ));
            }
            first_use.insert(name.clone(), i);

            let model: String = match table.get("model") {
                Some(item) => self.de(&format!("{at}.model"), item, None)?,
                None => return Err(self.at(&at, format!("missing `model`; expected one of {allowed_models}"))),
            };
            let mut config = table.clone();
            config.remove("name");
            config.remove("model");
            let profile: Option<String> = match config.remove("profile") {
                Some(item) => {
                    let spec: String = self.de(&format!("{at}.profile"), &item, None)?;
                    let base = self.path.parent().unwrap_or(Path::new(""));
                    load_profile(&spec, base).map_err(|e| self.at(&format!("{at}.profile"), e.to_string()))?;
                    Some(spec)
                }
                None => None,
            };
            let config = Item::Table(config);
            let hint = Some("plus `name`, `model` and `profile`");
            let kind = match model.as_str() {
                "micro-batch" => {
                    let c: MicroBatchConfig = self.de(&at, &config, hint)?;
                    c.validate(pipeline)
                        .map_err(|e| self.at(&format!("{at}.{}", e.key), e.message))?;
                    EngineKind::MicroBatch(c)
                }
                "per-record" => {
                    let c: DataflowConfig = self.de(&at, &config, hint)?;
                    c.validate()
                        .and_then(|()| c.validate_for(pipeline))
                        .map_err(|e| self.at(&format!("{at}.{}", e.key), e.message))?;
                    EngineKind::PerRecord(c)
                }
                "spark" => {
                    let (settings, config) = self.real_settings(&at, config)?;
                    let c: MicroBatchConfig = self.de(
                        &at,
                        &config,
                        Some("plus `name`, `model`, `profile`, `master`, `conf`, `warmup`, `bind`"),
                    )?;
                    c.validate(pipeline)
                        .map_err(|e| self.at(&format!("{at}.{}", e.key), e.message))?;
                    streamlab_real_engines::spark::check(pipeline, &c)
                        .and_then(|()| streamlab_real_engines::spark::check_conf(&settings.conf))
                        .map_err(|e| {
                            self.refused(&at, e.table == RefusedTable::Pipeline, &e.key, &e.reason, "Spark")
                        })?;
                    EngineKind::Spark(RealEngine { config: c, settings })
                }
                "flink" => {
                    let (settings, config) = self.real_settings(&at, config)?;
                    let c: DataflowConfig = self.de(
                        &at,
                        &config,
                        Some("plus `name`, `model`, `profile`, `master`, `conf`, `warmup`, `bind`"),
                    )?;
                    c.validate()
                        .map_err(|e| self.at(&format!("{at}.{}", e.key), e.message))?;
                    streamlab_real_engines::flink::check(pipeline, &c)
                        .and_then(|()| streamlab_real_engines::flink::check_conf(&settings.conf))
                        .map_err(|e| {
                            self.refused(&at, e.table == RefusedTable::Pipeline, &e.key, &e.reason, "Flink")
                        })?;
                    EngineKind::Flink(RealEngine { config: c, settings })
                }
                "kafka-streams" => {
                    let (settings, config) = self.real_settings(&at, config)?;
                    for (key, set) in [("master", settings.master.is_some()), ("bind", settings.bind.is_some())] {
                        if set {
                            return Err(self.at(
                                &format!("{at}.{key}"),
                                "Kafka Streams runs as one local application; its cluster is the Kafka cluster \
                                 ([workload] bootstrap_servers)",
                            ));
                        }
                    }
                    let c: KafkaStreamsConfig =
                        self.de(&at, &config, Some("plus `name`, `model`, `profile`, `conf`, `warmup`"))?;
                    c.validate()
                        .map_err(|e| self.at(&format!("{at}.{}", e.key), e.message))?;
                    streamlab_real_engines::kafka_streams::translate(pipeline, &c)
                        .map_err(|e| self.refused(&at, true, &e.key, &e.reason, "Kafka Streams"))?;
                    EngineKind::KafkaStreams(RealEngine { config: c, settings })
                }
                other => {
                    return Err(self.at(
                        &format!("{at}.model"),
                        format!("unknown model \"{other}\"; expected one of {allowed_models}"),
                    ))
                }
            };
            engines.push(EngineSpec { name, kind, profile });
        }
        Ok(engines)
    }

    /// The `[sweep]` table: each key a dotted key path (quoted, as `"engine[0].trigger.interval"`)
    /// and its values as an array, in file order. A key must name something a sweep can set
    /// (checked by setting its first value, as `streamlab sweep` will).
    fn sweep(&self) -> Result<Vec<SweepParam>> {
        let Some(item) = self.root.get("sweep") else {
            return Ok(Vec::new());
        };
        let Some(table) = item.as_table_like() else {
            return Err(self.at(
                "sweep",
                "must be a table: `[sweep]` with one `\"key.path\" = [values]` per swept key",
            ));
        };
        let mut params = Vec::new();
        for (key, value) in table.iter() {
            let line = table
                .key(key)
                .and_then(|k| k.span())
                .or_else(|| value.span())
                .map(|s| self.line_at(s.start));
            let shown = format!("sweep.\"{key}\"");
            let err =
                |message: String| self.invalid(line.or_else(|| self.line_of_path("sweep")), Some(&shown), message);
            let values = match value.as_array() {
                Some(values) if !values.is_empty() => values
                    .iter()
                    .map(|v| match v {
                        Value::String(s) => Ok(s.value().clone()),
                        Value::Integer(i) => Ok(i.value().to_string()),
                        Value::Float(f) => Ok(f.value().to_string()),
                        Value::Boolean(b) => Ok(b.value().to_string()),
                        other => Err(err(format!(
                            "a swept value must be a string, number or boolean, not {}",
                            other.type_name()
                        ))),
                    })
                    .collect::<Result<Vec<String>>>()?,
                _ => {
                    return Err(err(
                        "expected a non-empty array of the values to sweep, e.g. \"engine[0].trigger.interval\" = [\"100ms\", \"1s\"]"
                            .into(),
                    ))
                }
            };
            let param = SweepParam::from_parts(key, values).map_err(|e| err(e.to_string()))?;
            for value in &param.values {
                self.check_swept_value(&param.key, value).map_err(err)?;
            }
            params.push(param);
        }
        Ok(params)
    }

    /// Whether the scenario is valid with `key` set to `value`, as a sweep point will be: the
    /// text edited and read without its `[sweep]` table (so reading does not recurse).
    fn check_swept_value(&self, key: &str, value: &str) -> std::result::Result<(), String> {
        let edited = crate::sweep::set_key(self.path, self.text, key, value).map_err(|e| e.to_string())?;
        let mut doc: DocumentMut = edited
            .parse()
            .map_err(|e: toml_edit::TomlError| one_line(e.message()))?;
        doc.remove("sweep");
        match Scenario::parse(self.path, &doc.to_string()) {
            Ok(_) => Ok(()),
            Err(ScenarioError::Invalid {
                key: Some(at), message, ..
            }) => Err(format!("`{value}` makes `{at}` invalid: {message}")),
            Err(e) => Err(format!("`{value}`: {e}")),
        }
    }

    /// Splits a real engine's table into its own settings (`master`, `conf`, `warmup`, `bind`)
    /// and the native model's keys.
    fn real_settings(&self, at: &str, config: Item) -> Result<(RealSettings, Item)> {
        let Item::Table(mut table) = config else {
            unreachable!("an engine table")
        };
        let mut own = Table::new();
        for key in RealSettings::KEYS {
            if let Some(item) = table.remove(key) {
                own.insert(key, item);
            }
        }
        let settings: RealSettings = self.de(at, &Item::Table(own), None)?;
        Ok((settings, Item::Table(table)))
    }

    /// A key a real engine cannot run as described: `engine[i].key`, or `pipeline.key`.
    fn refused(&self, at: &str, in_pipeline: bool, key: &str, reason: &str, engine: &str) -> ScenarioError {
        let path = if in_pipeline {
            format!("pipeline.{key}")
        } else {
            format!("{at}.{key}")
        };
        self.at(&path, format!("{engine} cannot run this: {reason}"))
    }

    /// Refuses any key of `table` not in `allowed`, naming the allowed ones.
    fn check_keys(&self, prefix: &str, table: &dyn TableLike, allowed: &[&str]) -> Result<()> {
        match table.iter().find(|(k, _)| !allowed.contains(k)) {
            Some((key, _)) => Err(self.at(
                &join(prefix, key),
                format!("unknown key; expected one of {}", backticked_list(allowed)),
            )),
            None => Ok(()),
        }
    }

    /// Deserializes `item` (found at `key`) with serde, so `deny_unknown_fields` applies, and
    /// turns a serde error into one naming the key path and line. `unknown_key_hint` is added
    /// to unknown-field messages for keys the caller handles itself.
    fn de<T: DeserializeOwned>(&self, key: &str, item: &Item, unknown_key_hint: Option<&str>) -> Result<T> {
        let result = match item {
            Item::Value(value) => T::deserialize(value.clone().into_deserializer()),
            Item::Table(table) => toml_edit::de::from_document(DocumentMut::from(table.clone())),
            Item::ArrayOfTables(_) | Item::None => {
                return Err(self.at(key, "must not be an array of tables `[[...]]`"));
            }
        };
        result.map_err(|e| {
            let mut message = one_line(e.message());
            let (mut path, mut line) = match e.span() {
                Some(span) => (
                    self.locate(span.start).unwrap_or_else(|| key.to_owned()),
                    Some(self.line_at(span.start)),
                ),
                None => (key.to_owned(), self.line_of_path(key)),
            };
            if let Some(field) = quoted_after(&message, "unknown field `") {
                // An internally tagged table reports at the table; point at the key itself.
                let full = join(&path, field);
                if let (Some(span), true) = self.resolve(&full) {
                    path = full;
                    line = Some(self.line_at(span.start));
                }
                if let (Some(hint), true) = (unknown_key_hint, path == join(key, field)) {
                    message = format!("{message}, {hint}");
                }
            } else if let Some(field) = quoted_after(&message, "missing field `") {
                path = join(&path, field);
            }
            self.invalid(line, Some(&path), message)
        })
    }

    /// A required top-level key that is missing: the error points at the file's last line, where
    /// it would go (a truncated file ends there).
    fn missing(&self, key: &str, message: impl Into<String>) -> ScenarioError {
        let last = self.text.trim_end().lines().count().max(1);
        self.invalid(Some(last), Some(key), message)
    }

    fn invalid(&self, line: Option<usize>, key: Option<&str>, message: impl Into<String>) -> ScenarioError {
        ScenarioError::Invalid {
            path: self.path.to_path_buf(),
            line,
            key: key.map(str::to_owned),
            message: message.into(),
        }
    }

    /// An error about the key at dotted `path`, with the line of that key (or of the nearest
    /// enclosing key that exists).
    fn at(&self, path: &str, message: impl Into<String>) -> ScenarioError {
        self.invalid(self.line_of_path(path), Some(path), message)
    }

    fn line_at(&self, offset: usize) -> usize {
        line_and_column(self.text, offset).0
    }

    /// The line of the deepest existing key along `path` (`engine[1].trigger.interval`).
    fn line_of_path(&self, path: &str) -> Option<usize> {
        self.resolve(path).0.map(|span| self.line_at(span.start))
    }

    /// The span of the deepest existing key along `path`, and whether that is the whole path.
    fn resolve(&self, path: &str) -> (Option<Range<usize>>, bool) {
        let mut table: Option<&dyn TableLike> = Some(self.root);
        let mut best: Option<Range<usize>> = None;
        for segment in Segment::lenient(path) {
            let (name, index) = match &segment {
                Segment::Index(name, i) => (name.as_str(), Some(*i)),
                other => (other.name(), None),
            };
            let Some((key, item)) = table.and_then(|t| t.get_key_value(name)) else {
                return (best, false);
            };
            best = key.span().or_else(|| item.span()).or(best);
            table = match (index, item) {
                (None, item) => item.as_table_like(),
                (Some(i), Item::ArrayOfTables(tables)) => match tables.get(i) {
                    Some(t) => {
                        best = t.span().or(best);
                        Some(t)
                    }
                    None => return (best, false),
                },
                (Some(i), Item::Value(Value::Array(values))) => match values.get(i) {
                    Some(v) => {
                        best = v.span().or(best);
                        v.as_inline_table().map(|t| t as &dyn TableLike)
                    }
                    None => return (best, false),
                },
                (Some(_), _) => return (best, false),
            };
        }
        (best, true)
    }

    /// The dotted path of the deepest key or value whose span holds byte `offset`.
    fn locate(&self, offset: usize) -> Option<String> {
        let mut path = String::new();
        locate_in_table(self.root, offset, &mut path).then_some(path)
    }
}

fn locate_in_table(table: &dyn TableLike, offset: usize, path: &mut String) -> bool {
    for (name, item) in table.iter() {
        let len = path.len();
        if !path.is_empty() {
            path.push('.');
        }
        path.push_str(name);
        let key_span = table.key(name).and_then(|k| k.span());
        let found = match item {
            Item::Value(value) => locate_in_value(value, offset, path),
            Item::Table(t) => locate_in_table(t, offset, path) || holds(t.span(), offset),
            Item::ArrayOfTables(tables) => tables.iter().enumerate().any(|(i, t)| {
                let len = path.len();
                path.push_str(&format!("[{i}]"));
                let found = locate_in_table(t, offset, path) || holds(t.span(), offset);
                if !found {
                    path.truncate(len);
                }
                found
            }),
            Item::None => false,
        } || holds(key_span, offset);
        if found {
            return true;
        }
        path.truncate(len);
    }
    false
}

fn locate_in_value(value: &Value, offset: usize, path: &mut String) -> bool {
    let inside = match value {
        Value::InlineTable(t) => locate_in_table(t, offset, path),
        Value::Array(values) => values.iter().enumerate().any(|(i, v)| {
            let len = path.len();
            path.push_str(&format!("[{i}]"));
            let found = locate_in_value(v, offset, path);
            if !found {
                path.truncate(len);
            }
            found
        }),
        _ => false,
    };
    inside || holds(value.span(), offset)
}

/// True when `span` holds `offset` (an empty span holds its start).
fn holds(span: Option<Range<usize>>, offset: usize) -> bool {
    span.is_some_and(|s| s.start <= offset && offset < s.end.max(s.start + 1))
}

/// 1-based line and column (in characters) of byte `offset` in `text`.
fn line_and_column(text: &str, offset: usize) -> (usize, usize) {
    let mut offset = offset.min(text.len());
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = &text[..offset];
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    (
        before.matches('\n').count() + 1,
        before[line_start..].chars().count() + 1,
    )
}

/// Joins a parser or serde message into one line, with Rust type names in the user's words.
fn one_line(message: &str) -> String {
    let mut message = message
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join("; ");
    for (rust, words) in [
        ("expected u64", "expected a non-negative integer"),
        ("expected u32", "expected a non-negative integer"),
        ("expected usize", "expected a non-negative integer"),
        ("expected f64", "expected a number"),
    ] {
        message = message.replace(rust, words);
    }
    message
}

/// The name in backticks right after `prefix` at the start of a serde message
/// (`unknown field `x`, ...` gives `x`).
fn quoted_after<'m>(message: &'m str, prefix: &str) -> Option<&'m str> {
    message.strip_prefix(prefix).and_then(|rest| rest.split('`').next())
}

fn join(prefix: &str, key: &str) -> String {
    if prefix.is_empty() {
        key.to_owned()
    } else {
        format!("{prefix}.{key}")
    }
}

fn backticked_list(items: &[&str]) -> String {
    items.iter().map(|s| format!("`{s}`")).collect::<Vec<_>>().join(", ")
}

fn quoted_list(items: &[&str]) -> String {
    items.iter().map(|s| format!("\"{s}\"")).collect::<Vec<_>>().join(", ")
}
