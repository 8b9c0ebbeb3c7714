//! Human-readable or JSON output, and errors with their stable names.

use std::process::ExitCode;

use bluegreen::text;
use serde::Serialize;

/// How results are printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Output {
    /// Aligned text for people.
    Text,
    /// One JSON document on stdout for scripts.
    Json,
}

impl Output {
    /// Prints `value` as JSON, or calls `text` to print it for people.
    pub fn show<T: Serialize>(self, value: &T, text: impl FnOnce(&T)) -> ExitCode {
        match self {
            Output::Json => match serde_json::to_string_pretty(value) {
                Ok(json) => outln!("{json}"),
                Err(e) => return crate::fail(&format!("cannot print JSON: {e}")),
            },
            Output::Text => text(value),
        }
        ExitCode::SUCCESS
    }

    /// Reports a step error: `{"error": name, "message": …}` on stderr in JSON mode, else
    /// `bluegreen: Name: message`. Always exit status 1.
    pub fn error(self, e: &bluegreen::StepError) -> ExitCode {
        self.failure(e.name(), &e.to_string())
    }

    /// Reports a failure by its stable name (a step error's, or the operator API's).
    pub fn failure(self, name: &str, message: &str) -> ExitCode {
        match self {
            Output::Json => {
                errln!("{}", serde_json::json!({"error": name, "message": message}));
                ExitCode::FAILURE
            }
            Output::Text => crate::fail(&format!("{name}: {message}")),
        }
    }
}

/// Prints rows as columns padded to their widest cell. Each cell is one line of text from
/// wherever it came ([`bluegreen::text::line`]): a line break or a control sequence in a value
/// is shown, never acted on, so one value can never forge another row.
pub fn table(header: &[&str], rows: &[Vec<String>]) {
    let rows: Vec<Vec<String>> = rows
        .iter()
        .map(|row| row.iter().map(|c| text::line(c).into_owned()).collect())
        .collect();
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for row in &rows {
        for (i, cell) in row.iter().enumerate() {
            widths[i] = widths[i].max(cell.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let padded: Vec<String> = cells
            .iter()
            .enumerate()
            .map(|(i, c)| format!("{c:<width$}", width = widths[i]))
            .collect();
        outln!("{}", padded.join("  ").trim_end());
    };
    line(header.to_vec());
    for row in &rows {
        line(row.iter().map(String::as_str).collect());
    }
}

/// Writes the CLI's output to stdout (see `outln!`): a closed pipe exits quietly with 141,
/// another write error exits with 1 and says so on stderr. Everything passes through
/// [`bluegreen::text::lines`]: the CLI prints records, AWS messages and config values, and no
/// control sequence among them reaches the terminal raw (JSON output reads back the same).
pub fn write_out(args: std::fmt::Arguments<'_>) {
    use std::io::Write;
    let written = args.to_string();
    let mut stdout = std::io::stdout().lock();
    if let Err(e) = stdout.write_all(text::lines(&written).as_bytes()) {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            std::process::exit(141);
        }
        write_err(format_args!("bluegreen: cannot write the output: {e}\n"));
        std::process::exit(1);
    }
}

/// Writes to stderr (see `errln!`), through [`bluegreen::text::lines`] as [`write_out`] does.
pub fn write_err(args: std::fmt::Arguments<'_>) {
    use std::io::Write;
    let written = args.to_string();
    let _ = std::io::stderr().write_all(text::lines(&written).as_bytes());
}
