//! Writes the report of results directories without the `streamlab` command:
//! `cargo run -p streamlab-reports --example report -- RESULTS_DIR... --out DIR`.
use std::path::PathBuf;

fn main() {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let out = match args.iter().position(|a| a == "--out") {
        Some(i) if i + 1 < args.len() => {
            let out = PathBuf::from(args.remove(i + 1));
            args.remove(i);
            out
        }
        _ => PathBuf::from("report"),
    };
    let dirs: Vec<PathBuf> = args.into_iter().map(PathBuf::from).collect();
    match streamlab_reports::write_report(&dirs, &out) {
        Ok(paths) => println!("{}\n{}", paths.html.display(), paths.markdown.display()),
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(1);
        }
    }
}
