//! The report as a small document model, rendered to Markdown and to self-contained HTML from
//! the same blocks so the two always say the same thing.
//!
//! Text uses two inline marks, as in Markdown: `` `code` `` and `**strong**`. The HTML is
//! one file: CSS in a `<style>` element, every figure's SVG inlined, no scripts, no fonts or
//! anything else fetched (the SVG text asks for the generic `sans-serif` family).

use std::fmt::Write as _;

/// One block of the report.
#[derive(Debug, Clone, PartialEq)]
pub enum Block {
    /// A heading of level 1–4.
    Heading(u8, String),
    /// A paragraph of text (with inline marks).
    Paragraph(String),
    /// A paragraph set off as the answer (a tinted box in HTML, a quote in Markdown).
    Callout(String),
    /// A bulleted list.
    List(Vec<String>),
    /// A table: header cells and rows; numeric-looking cells are right-aligned in HTML.
    Table {
        /// The header row.
        header: Vec<String>,
        /// The body rows.
        rows: Vec<Vec<String>>,
    },
    /// A figure: its files (relative to the report) and SVG text.
    Figure {
        /// The SVG file name, next to the report.
        svg_file: String,
        /// The PNG file name, next to the report.
        png_file: String,
        /// The SVG document, inlined in the HTML.
        svg: String,
        /// Short title (alt text).
        title: String,
        /// How to read it.
        caption: String,
    },
    /// Blocks side by side on a wide screen (HTML), one after another in Markdown and on a
    /// narrow screen: how the report's first screen fits a plot beside its table.
    Row(Vec<Block>),
}

/// Renders `blocks` as GitHub-flavoured Markdown.
pub fn markdown(blocks: &[Block]) -> String {
    let mut out = String::new();
    markdown_into(&mut out, blocks);
    out.trim_end().to_string() + "\n"
}

fn markdown_into(out: &mut String, blocks: &[Block]) {
    for block in blocks {
        match block {
            Block::Row(inner) => markdown_into(out, inner),
            Block::Callout(text) => {
                let _ = writeln!(out, "> {text}\n");
            }
            Block::Heading(level, text) => {
                let _ = writeln!(out, "{} {text}\n", "#".repeat(usize::from(*level)));
            }
            Block::Paragraph(text) => {
                let _ = writeln!(out, "{text}\n");
            }
            Block::List(items) => {
                for item in items {
                    let _ = writeln!(out, "- {item}");
                }
                out.push('\n');
            }
            Block::Table { header, rows } => {
                let cell = |c: &String| c.replace('|', "\\|");
                let _ = writeln!(out, "| {} |", header.iter().map(cell).collect::<Vec<_>>().join(" | "));
                let rule: Vec<&str> = header
                    .iter()
                    .enumerate()
                    .map(|(i, _)| if numeric_column(rows, i) { "---:" } else { "---" })
                    .collect();
                let _ = writeln!(out, "| {} |", rule.join(" | "));
                for row in rows {
                    let _ = writeln!(out, "| {} |", row.iter().map(cell).collect::<Vec<_>>().join(" | "));
                }
                out.push('\n');
            }
            Block::Figure {
                svg_file,
                png_file,
                title,
                caption,
                ..
            } => {
                let _ = writeln!(out, "![{title}]({png_file})\n");
                let _ = writeln!(out, "*{title}* ([SVG]({svg_file})). {caption}\n");
            }
        }
    }
}

const CSS: &str = "body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;margin:0;color:#1b1b1b;\
background:#fff;line-height:1.5}main{max-width:1060px;margin:0 auto;padding:1.5rem}\
h1{font-size:1.8rem;border-bottom:2px solid #0072b2}h2{margin-top:2.2rem;border-bottom:1px solid #ddd}\
table{border-collapse:collapse;margin:1rem 0;font-size:.92rem}th,td{border:1px solid #ccc;padding:.3rem .6rem}\
th{background:#f2f5f8;text-align:left}td.n{text-align:right;font-variant-numeric:tabular-nums}\
code{background:#f3f3f3;padding:0 .2rem;border-radius:3px}figure{margin:1.5rem 0}\
figure svg{width:100%;height:auto;border:1px solid #e3e3e3}figcaption{font-size:.92rem;color:#444}\
.table-wrap{overflow-x:auto}.row{display:grid;grid-template-columns:minmax(0,1.4fr) minmax(0,1fr);\
gap:1.2rem;align-items:start}.row figure,.row table{margin-top:.4rem}\
.answer{background:#f5f9fc;border-left:4px solid #0072b2;padding:.6rem 1rem;margin:.6rem 0}\
@media (max-width:820px){.row{grid-template-columns:1fr}}";

/// Renders `blocks` as one self-contained HTML document titled `title`.
pub fn html(title: &str, blocks: &[Block]) -> String {
    let mut out = String::new();
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>{}</title>\n<style>{CSS}</style>\n</head>\n<body>\n<main>\n",
        escape(title)
    );
    html_into(&mut out, blocks);
    out.push_str("</main>\n</body>\n</html>\n");
    out
}

fn html_into(out: &mut String, blocks: &[Block]) {
    for block in blocks {
        match block {
            Block::Callout(text) => {
                let _ = writeln!(out, "<p class=\"answer\">{}</p>", inline(text));
            }
            Block::Row(inner) => {
                out.push_str("<div class=\"row\">\n");
                for b in inner {
                    out.push_str("<div>\n");
                    html_into(out, std::slice::from_ref(b));
                    out.push_str("</div>\n");
                }
                out.push_str("</div>\n");
            }
            Block::Heading(level, text) => {
                let _ = writeln!(out, "<h{level}>{}</h{level}>", inline(text));
            }
            Block::Paragraph(text) => {
                let _ = writeln!(out, "<p>{}</p>", inline(text));
            }
            Block::List(items) => {
                out.push_str("<ul>\n");
                for item in items {
                    let _ = writeln!(out, "<li>{}</li>", inline(item));
                }
                out.push_str("</ul>\n");
            }
            Block::Table { header, rows } => {
                out.push_str("<div class=\"table-wrap\"><table>\n<thead><tr>");
                for h in header {
                    let _ = write!(out, "<th>{}</th>", inline(h));
                }
                out.push_str("</tr></thead>\n<tbody>\n");
                for row in rows {
                    out.push_str("<tr>");
                    for c in row {
                        let class = if numeric(c) || c == "-" { " class=\"n\"" } else { "" };
                        let _ = write!(out, "<td{class}>{}</td>", inline(c));
                    }
                    out.push_str("</tr>\n");
                }
                out.push_str("</tbody></table></div>\n");
            }
            Block::Figure {
                svg, title, caption, ..
            } => {
                let svg = svg.find("<svg").map_or(svg.as_str(), |at| &svg[at..]);
                let _ = writeln!(
                    out,
                    "<figure role=\"group\" aria-label=\"{}\">\n{}\n<figcaption><strong>{}</strong>. {}</figcaption>\n</figure>",
                    escape(title),
                    svg.trim_end(),
                    inline(title),
                    inline(caption)
                );
            }
        }
    }
}

/// Whether column `i` holds numbers (and `-` for absent values), with at least one number.
fn numeric_column(rows: &[Vec<String>], i: usize) -> bool {
    rows.iter().all(|r| numeric(&r[i]) || r[i] == "-") && rows.iter().any(|r| numeric(&r[i]))
}

/// Whether a table cell is a number (right-aligned).
fn numeric(cell: &str) -> bool {
    let cell = cell.trim().trim_end_matches('%');
    !cell.is_empty() && cell.parse::<f64>().is_ok()
}

/// Escapes text for HTML.
pub fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// Escapes text and turns `` `code` `` and `**strong**` marks into HTML.
fn inline(text: &str) -> String {
    let mut out = String::new();
    for (i, part) in text.split('`').enumerate() {
        if i % 2 == 1 {
            let _ = write!(out, "<code>{}</code>", escape(part));
        } else {
            for (j, piece) in escape(part).split("**").enumerate() {
                if j % 2 == 1 {
                    let _ = write!(out, "<strong>{piece}</strong>");
                } else {
                    out.push_str(piece);
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inline_marks_become_html_and_text_is_escaped() {
        assert_eq!(
            inline("a `x<y` **b** & c"),
            "a <code>x&lt;y</code> <strong>b</strong> &amp; c"
        );
    }

    #[test]
    fn tables_align_numbers_in_both_renderings() {
        let blocks = [Block::Table {
            header: vec!["run".into(), "p99 (ms)".into()],
            rows: vec![vec!["a|b".into(), "12.5".into()]],
        }];
        let md = markdown(&blocks);
        assert!(md.contains("| --- | ---: |"), "{md}");
        assert!(md.contains("a\\|b"), "{md}");
        let page = html("t", &blocks);
        assert!(page.contains("<td class=\"n\">12.5</td>"), "{page}");
        assert!(!page.contains("<script"));
    }
}
