//! Aligned tables with a header row, for listings printed to a terminal.
//! Output piped elsewhere keeps its plain, stable lines (and scripts use
//! `--json`), so only people see these.

use std::io::IsTerminal;

/// Whether standard output is a terminal (tables) or not (plain lines).
pub fn stdout_is_terminal() -> bool {
    std::io::stdout().is_terminal()
}

/// `headers` then `rows`, columns two spaces apart, each as wide as its
/// widest cell (in characters); the last column is not padded, so a long
/// value (a document) does not pad every line.
pub fn render(headers: &[&str], rows: &[Vec<String>]) -> Vec<String> {
    let columns = headers.len();
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: &mut dyn Iterator<Item = &str>| {
        let mut out = String::new();
        for (i, cell) in cells.enumerate().take(columns) {
            if i + 1 == columns {
                out.push_str(cell);
            } else {
                let pad = widths[i] - cell.chars().count();
                out.push_str(cell);
                out.extend(std::iter::repeat_n(' ', pad + 2));
            }
        }
        out.trim_end().to_owned()
    };
    let mut out = vec![line(&mut headers.iter().copied())];
    out.extend(rows.iter().map(|r| line(&mut r.iter().map(String::as_str))));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_align_under_their_headers() {
        let rows = vec![
            vec!["sp1".into(), "téam".into(), "admin".into()],
            vec!["longer-id".into(), "x".into(), "refused: a b".into()],
        ];
        assert_eq!(
            render(&["ID", "NAME", "STATE"], &rows),
            [
                "ID         NAME  STATE",
                "sp1        téam  admin",
                "longer-id  x     refused: a b",
            ]
        );
        // A short row leaves its missing cells empty; no trailing blanks.
        assert_eq!(render(&["A", "B"], &[vec!["1".into()]]), ["A  B", "1"]);
        assert_eq!(render(&["A"], &[]), ["A"]);
    }
}
