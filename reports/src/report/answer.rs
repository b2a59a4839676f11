//! The report's first screen: the question, the recommendation with its reason, the table
//! against the SLO and the plot that shows the trade-off — what a reader opened the report
//! for, before any configuration detail.
//!
//! Invariant: nothing here is computed anew; every sentence and table comes from the decision
//! record ([`super::decide`]) and the runs, so the first screen and the record never disagree.

use super::decide::Record;
use super::doc::Block;
use super::Config;
use crate::summary::Stability;

/// How the notes that explain an empty or stalled run begin (written by the scenarios crate).
const EMPTY_RESULT_NOTES: [&str; 3] = ["no window result", "the watermark stalled", "no output"];

/// The "answer" section: question, recommendation, the runs that did not keep up or delivered
/// nothing (one line each, the reasons are in their notes), then the SLO table beside the
/// trade-off figure.
pub(super) fn answer_section(record: &Record, configs: &[Config<'_>], trade_off: Block) -> Vec<Block> {
    let mut blocks = vec![
        Block::Heading(2, "The answer".into()),
        Block::Paragraph(format!("**Question.** {}", record.question)),
        Block::Callout(record.recommendation.clone()),
    ];
    let named = |s: Stability| -> Vec<&Config<'_>> { configs.iter().filter(|c| c.run.stability == Some(s)).collect() };
    let mut caveats = Vec::new();
    // A run without output says why in one of its notes: shown here in full, since that is
    // where the reader is stuck.
    for c in named(Stability::NoOutput) {
        let why = c
            .run
            .notes
            .iter()
            .find(|n| EMPTY_RESULT_NOTES.iter().any(|p| n.starts_with(p)))
            .map_or("no output (see its notes)", String::as_str);
        caveats.push(format!("{}: {why}", c.name));
    }
    for (stability, words) in [
        (
            Stability::CannotKeepUp,
            "could not keep up with the input: backlog and latency grew",
        ),
        (
            Stability::BehindTrigger,
            "fell behind the trigger but kept up with the input: batches ran back to back and latency stayed bounded",
        ),
    ] {
        let names: Vec<String> = named(stability).iter().map(|c| c.name.clone()).collect();
        if !names.is_empty() {
            caveats.push(format!("{}: {words}", names.join(", ")));
        }
    }
    if !caveats.is_empty() {
        blocks.push(Block::Paragraph("**Watch:**".into()));
        blocks.push(Block::List(caveats));
    }
    let mut row = vec![trade_off];
    row.extend(record.summary_table.clone());
    blocks.push(Block::Row(row));
    blocks.push(Block::Paragraph(
        "The configurations, every result, the remaining plots and the full decision record follow.".into(),
    ));
    blocks
}
