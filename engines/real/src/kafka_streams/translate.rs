//! A pipeline as a generated Kafka Streams application (one Java file, compiled with `javac`
//! against the pinned Kafka's jars at the start of a run).
//!
//! The topology, in the pipeline's order:
//! `stream(input)` → drop the end markers → split the CSV row → `filter` (the kinds, and the
//! lookup join's inner-join condition) → stateless: `mapValues` to the sink row → `to(output)`;
//! stateful: `map` to (the `key_by` value, the aggregated value and the arrival) —
//! a repartition, as `selectKey` before `groupByKey` always is — → `groupByKey` →
//! `windowedBy` (tumbling and sliding as `TimeWindows` with the grace period, session as
//! `SessionWindows`) → `aggregate` (count, sum, min, max, avg, with the window's largest
//! scheduled arrival carried for latency) → `suppress(untilWindowCloses)` unless turned off →
//! `toStream` → the sink row → `to(output)`.
//!
//! The lookup join is a generated lookup: the campaign table (a few hundred rows, fixed for the
//! run) is read once from the run's `campaigns.csv` into a map, as a `GlobalKTable` would be
//! materialized on every instance, without a third topic to fill first.
//!
//! Rows keep the contract of [`crate::job::sink_columns`], so one parser reads every engine.
//! Values travel as text (the input row, `value,arrival` between map and aggregate, and
//! `count,acc,max_arrival` in the state store): plain `Serdes.String()` everywhere, no class of
//! ours in any serialized form. The application writes `RUNNING` to its ready file when Kafka
//! Streams reaches the `RUNNING` state (every task assigned): the driver starts the run clock
//! only then.

use std::fmt::Write as _;

use streamlab_engines::event::EventKind;
use streamlab_engines::pipeline::{AggFunc, Aggregation, Field, PipelineSpec, WindowSpec};

use crate::job::untranslated;
use crate::kafka_streams::config::KafkaStreamsConfig;

/// The generated application's class (and file) name.
pub const CLASS_NAME: &str = "StreamlabKafkaStreams";

/// A pipeline key the generated application cannot express, and why.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("pipeline key `{key}`: {reason}")]
pub struct KafkaStreamsRefusal {
    /// Dotted key path inside `[pipeline]`.
    pub key: String,
    /// Why, and what is allowed.
    pub reason: String,
}

fn refuse(key: &str, reason: impl Into<String>) -> KafkaStreamsRefusal {
    KafkaStreamsRefusal {
        key: key.into(),
        reason: reason.into(),
    }
}

/// The Java expression of `field` (as a `long`) over the split row `f`.
fn field(f: Field, key: &str) -> Result<String, KafkaStreamsRefusal> {
    let column = |i: usize| format!("Long.parseLong(f[{i}])");
    Ok(match f {
        Field::Seq => column(0),
        Field::EventTime => column(1),
        Field::Partition => column(3),
        Field::User => column(4),
        Field::Session => column(5),
        Field::Page => column(6),
        Field::Ad => column(7),
        Field::Kind => "kindIndex(f[8])".into(),
        Field::DwellMs => column(9),
        Field::PriceCents => column(10),
        Field::Campaign => "CAMPAIGNS.get(Long.parseLong(f[7]))".into(),
        other => {
            return Err(refuse(
                key,
                format!(
                    "`{}` is a Nexmark field; the input topic carries the clickstream's columns",
                    other.name()
                ),
            ))
        }
    })
}

/// The Java text of a projected column (the kind as its name, as the other engines send it).
fn projected(f: Field) -> Result<String, KafkaStreamsRefusal> {
    match f {
        Field::Kind => Ok("f[8]".into()),
        other => field(other, "project"),
    }
}

/// What the generated topology does not build yet, beyond what no generated job translates
/// (`untranslated`): the stages and Nexmark records the Spark and Flink jobs run but this
/// application does not. Refused by key, before a broker starts.
fn not_in_topology(pipeline: &PipelineSpec) -> Option<(&'static str, String)> {
    let nexmark = |kinds: &[EventKind]| kinds.iter().any(|k| EventKind::NEXMARK.contains(k));
    let key = if pipeline.join.is_some() {
        "join"
    } else if pipeline.top_n.is_some() {
        "top_n"
    } else if pipeline.then.is_some() {
        "then"
    } else if !pipeline.predicates.is_empty() {
        "where"
    } else if pipeline.convert.is_some() {
        "convert"
    } else if pipeline.filter_kinds.as_deref().is_some_and(nexmark) {
        "filter_kinds"
    } else {
        return None;
    };
    Some((
        key,
        format!(
            "the generated Kafka Streams application does not translate `{key}` yet (filter, lookup join, \
             project and one windowed aggregate only); streamlab's own micro-batch and per-record engines \
             run it (`model = \"micro-batch\"` / `\"per-record\"`)"
        ),
    ))
}

/// The generated application's Java source for `pipeline`.
pub fn translate(pipeline: &PipelineSpec, config: &KafkaStreamsConfig) -> Result<String, KafkaStreamsRefusal> {
    if let Some((key, reason)) = untranslated(pipeline).or_else(|| not_in_topology(pipeline)) {
        return Err(refuse(key, reason.replace("Spark and Flink", "Kafka Streams")));
    }
    let mut keep = vec!["true".to_string()];
    if let Some(kinds) = &pipeline.filter_kinds {
        let names: Vec<String> = kinds.iter().map(|k| format!("\"{}\".equals(f[8])", k.name())).collect();
        keep.push(format!("({})", names.join(" || ")));
    }
    if pipeline.lookup_join {
        keep.push("CAMPAIGNS.containsKey(Long.parseLong(f[7]))".into());
    }
    let mut kind_cases = String::new();
    for k in EventKind::CLICKSTREAM {
        let _ = writeln!(kind_cases, "            case \"{}\": return {};", k.name(), k.index());
    }
    let merge = match pipeline.aggregate.map(|a| a.function) {
        Some(AggFunc::Min) => "Math.min(a1, b1)",
        Some(AggFunc::Max) => "Math.max(a1, b1)",
        _ => "a1 + b1",
    };
    let topology = match &pipeline.aggregate {
        None => stateless(pipeline)?,
        Some(a) => stateful(a, config)?,
    };
    Ok(format!(
        r#"// Generated by streamlab from the scenario's [pipeline]; regenerated at every run.
import java.io.Reader;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.time.Duration;
import java.util.HashMap;
import java.util.Map;
import java.util.Properties;

import org.apache.kafka.common.serialization.Serdes;
import org.apache.kafka.streams.KafkaStreams;
import org.apache.kafka.streams.KeyValue;
import org.apache.kafka.streams.StreamsBuilder;
import org.apache.kafka.streams.errors.StreamsUncaughtExceptionHandler;
import org.apache.kafka.streams.kstream.*;

public final class {CLASS_NAME} {{
    /** The lookup join's table: ad -> campaign, read once from campaigns.csv. */
    static final Map<Long, Long> CAMPAIGNS = new HashMap<>();

    static long kindIndex(String kind) {{
        switch (kind) {{
{kind_cases}            default: return -1;
        }}
    }}

    static boolean keep(String[] f) {{
        return {keep};
    }}

    /** Two session windows' aggregates (count,acc,max_arrival) merged. */
    static String merge(String x, String y) {{
        String[] a = x.split(",");
        String[] b = y.split(",");
        long ca = Long.parseLong(a[0]);
        long cb = Long.parseLong(b[0]);
        long a1 = Long.parseLong(a[1]);
        long b1 = Long.parseLong(b[1]);
        long acc = ca == 0 ? b1 : cb == 0 ? a1 : {merge};
        return (ca + cb) + "," + acc + "," + Math.max(Long.parseLong(a[2]), Long.parseLong(b[2]));
    }}

    /** args: streams.properties, input topic, output topic, campaigns.csv, ready file, committed-offsets file */
    public static void main(String[] args) throws Exception {{
        Properties props = new Properties();
        try (Reader r = Files.newBufferedReader(Paths.get(args[0]))) {{
            props.load(r);
        }}
        String input = args[1];
        String output = args[2];
        for (String line : Files.readAllLines(Paths.get(args[3]))) {{
            if (line.isEmpty() || line.startsWith("ad")) continue;
            String[] c = line.split(",");
            CAMPAIGNS.put(Long.parseLong(c[0]), Long.parseLong(c[1]));
        }}
        StreamsBuilder builder = new StreamsBuilder();
        KStream<String, String[]> events = builder
            .stream(input, Consumed.with(Serdes.String(), Serdes.String()))
            .filter((k, v) -> v != null && !"END".equals(v))
            .mapValues(v -> v.split(","))
            .filter((k, f) -> keep(f));
{topology}
        KafkaStreams streams = new KafkaStreams(builder.build(), props);
        Path ready = Paths.get(args[4]);
        streams.setStateListener((now, before) -> {{
            if (now == KafkaStreams.State.RUNNING) {{
                try {{
                    Files.writeString(ready, "RUNNING\n");
                }} catch (java.io.IOException e) {{
                    e.printStackTrace();
                }}
            }}
            System.out.println("streamlab: state " + before + " -> " + now);
        }});
        streams.setUncaughtExceptionHandler(e -> {{
            e.printStackTrace();
            return StreamsUncaughtExceptionHandler.StreamThreadExceptionResponse.SHUTDOWN_CLIENT;
        }});
        Runtime.getRuntime().addShutdownHook(new Thread(() -> streams.close(Duration.ofSeconds(2))));
        // What a restart resumes from: the input offsets the group has committed (none on a
        // first start), written before anything is read again.
        Properties adminProps = new Properties();
        adminProps.put("bootstrap.servers", props.getProperty("bootstrap.servers"));
        StringBuilder committed = new StringBuilder();
        try (org.apache.kafka.clients.admin.Admin admin = org.apache.kafka.clients.admin.Admin.create(adminProps)) {{
            for (var e : admin.listConsumerGroupOffsets(props.getProperty("application.id"))
                    .partitionsToOffsetAndMetadata().get().entrySet()) {{
                if (e.getKey().topic().equals(input) && e.getValue() != null) {{
                    committed.append(e.getKey().partition()).append(',').append(e.getValue().offset()).append('\n');
                }}
            }}
        }}
        Files.writeString(Paths.get(args[5]), committed.toString());
        streams.start();
    }}
}}
"#,
        keep = keep.join(" && "),
    ))
}

fn stateless(p: &PipelineSpec) -> Result<String, KafkaStreamsRefusal> {
    let mut cols = vec!["f[0]".to_string()];
    for &f in p.project.iter().filter(|&&f| f != Field::Seq) {
        cols.push(projected(f)?);
    }
    cols.push("f[2]".into());
    Ok(format!(
        "        events\n            .mapValues(f -> {})\n            .to(output, Produced.with(Serdes.String(), Serdes.String()));\n",
        cols.join(" + \",\" + ")
    ))
}

fn stateful(a: &Aggregation, config: &KafkaStreamsConfig) -> Result<String, KafkaStreamsRefusal> {
    let key = field(a.key_by, "aggregate.key_by")?;
    let value = match (a.function, a.field) {
        (AggFunc::Count, _) => "0L".to_string(),
        (AggFunc::DistinctCount, _) => {
            return Err(refuse(
                "aggregate.function",
                "the generated Kafka Streams application has no exact distinct count yet; allowed: count, sum, min, max, avg",
            ))
        }
        (_, Some(f)) => field(f, "aggregate.field")?,
        (_, None) => return Err(refuse("aggregate.field", "this function needs a field")),
    };
    // acc: the running sum (sum, avg), minimum or maximum.
    let combine = match a.function {
        AggFunc::Min => "first ? x : Math.min(acc, x)",
        AggFunc::Max => "first ? x : Math.max(acc, x)",
        _ => "acc + x",
    };
    let out_value = match a.function {
        AggFunc::Count => "Long.toString(c)",
        AggFunc::Avg => "Double.toString((double) acc / c)",
        _ => "Long.toString(acc)",
    };
    let ms = |s: streamlab_engines::time::Span| s.nanos() / 1_000_000;
    let grace = ms(config.grace);
    let (windows, end, merger) = match a.window {
        WindowSpec::Tumbling { size } => (
            format!("TimeWindows.ofSizeAndGrace(Duration.ofMillis({}), Duration.ofMillis({grace}))", ms(size)),
            "wk.window().end()".to_string(),
            "",
        ),
        WindowSpec::Sliding { size, slide } => (
            format!(
                "TimeWindows.ofSizeAndGrace(Duration.ofMillis({}), Duration.ofMillis({grace})).advanceBy(Duration.ofMillis({}))",
                ms(size),
                ms(slide)
            ),
            "wk.window().end()".to_string(),
            "",
        ),
        // Kafka Streams' session window ends at its last record; streamlab's (Flink's) at the
        // last record plus the gap.
        WindowSpec::Session { gap } => (
            format!("SessionWindows.ofInactivityGapAndGrace(Duration.ofMillis({}), Duration.ofMillis({grace}))", ms(gap)),
            format!("(wk.window().end() + {})", ms(gap)),
            ", (k, x, y) -> merge(x, y)",
        ),
    };
    let suppress = if config.suppress {
        "\n            .suppress(Suppressed.untilWindowCloses(Suppressed.BufferConfig.unbounded()))"
    } else {
        ""
    };
    let is_update = !config.suppress;
    Ok(format!(
        r#"        Aggregator<String, String, String> add = (k, v, agg) -> {{
            String[] s = agg.split(",");
            String[] in = v.split(",");
            long c = Long.parseLong(s[0]) + 1;
            boolean first = c == 1;
            long acc = Long.parseLong(s[1]);
            long x = Long.parseLong(in[0]);
            acc = {combine};
            long arrival = Math.max(Long.parseLong(s[2]), Long.parseLong(in[1]));
            return c + "," + acc + "," + arrival;
        }};
        events
            .map((k, f) -> KeyValue.pair(Long.toString({key}), {value} + "," + f[2]))
            .groupByKey(Grouped.with("by-key", Serdes.String(), Serdes.String()))
            .windowedBy({windows})
            .aggregate(() -> "0,0,0", add{merger}, Materialized.with(Serdes.String(), Serdes.String())){suppress}
            .toStream()
            .filter((wk, agg) -> agg != null)
            .map((wk, agg) -> {{
                String[] s = agg.split(",");
                long c = Long.parseLong(s[0]);
                long acc = Long.parseLong(s[1]);
                String row = wk.key() + "," + wk.window().start() + "," + {end} + "," + c + "," + {out_value}
                    + ",{is_update}," + s[2];
                return KeyValue.pair(wk.key(), row);
            }})
            .to(output, Produced.with(Serdes.String(), Serdes.String()));
"#
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use streamlab_engines::time::Span;

    fn windowed() -> PipelineSpec {
        PipelineSpec {
            filter_kinds: Some(vec![EventKind::Click, EventKind::View]),
            lookup_join: true,
            aggregate: Some(Aggregation {
                key_by: Field::Campaign,
                window: WindowSpec::Tumbling {
                    size: Span::from_ms(2000),
                },
                function: AggFunc::Count,
                field: None,
            }),
            ..PipelineSpec::default()
        }
    }

    #[test]
    fn a_windowed_count_is_a_repartitioned_windowed_aggregate_with_suppress() {
        let java = translate(&windowed(), &KafkaStreamsConfig::default()).unwrap();
        assert!(java.contains("public final class StreamlabKafkaStreams"));
        assert!(
            java.contains("(\"click\".equals(f[8]) || \"view\".equals(f[8]))"),
            "{java}"
        );
        assert!(java.contains("CAMPAIGNS.containsKey(Long.parseLong(f[7]))"));
        assert!(java.contains("TimeWindows.ofSizeAndGrace(Duration.ofMillis(2000), Duration.ofMillis(0))"));
        assert!(java.contains(".suppress(Suppressed.untilWindowCloses("));
        assert!(java.contains(",false,"));
    }

    #[test]
    fn without_suppress_every_flush_is_an_update() {
        let config = KafkaStreamsConfig {
            suppress: false,
            ..KafkaStreamsConfig::default()
        };
        let java = translate(&windowed(), &config).unwrap();
        assert!(!java.contains(".suppress("));
        assert!(java.contains(",true,"));
    }

    #[test]
    fn a_stateless_pipeline_sends_seq_the_projection_and_the_arrival() {
        let p = PipelineSpec {
            project: vec![Field::Seq, Field::User, Field::Kind],
            ..PipelineSpec::default()
        };
        let java = translate(&p, &KafkaStreamsConfig::default()).unwrap();
        assert!(
            java.contains(".mapValues(f -> f[0] + \",\" + Long.parseLong(f[4]) + \",\" + f[8] + \",\" + f[2])"),
            "{java}"
        );
    }

    #[test]
    fn what_the_application_cannot_express_is_refused_by_key() {
        let mut p = windowed();
        if let Some(a) = &mut p.aggregate {
            a.function = AggFunc::DistinctCount;
            a.field = Some(Field::User);
        }
        let err = translate(&p, &KafkaStreamsConfig::default()).unwrap_err();
        assert_eq!(err.key, "aggregate.function");
        let p = PipelineSpec {
            convert: windowed().convert,
            ..windowed()
        };
        assert!(translate(&p, &KafkaStreamsConfig::default()).is_ok());
    }

    #[test]
    fn stages_the_spark_and_flink_jobs_run_are_refused_here_by_key() {
        let p = PipelineSpec {
            convert: Some(streamlab_engines::pipeline::Convert {
                field: Field::Price,
                multiply: 908,
                divide: 1000,
            }),
            ..windowed()
        };
        let err = translate(&p, &KafkaStreamsConfig::default()).unwrap_err();
        assert_eq!(err.key, "convert");
        assert!(err.to_string().contains("Kafka Streams"), "{err}");
        let p = PipelineSpec {
            filter_kinds: Some(vec![EventKind::Bid]),
            ..windowed()
        };
        assert_eq!(
            translate(&p, &KafkaStreamsConfig::default()).unwrap_err().key,
            "filter_kinds"
        );
    }
}
