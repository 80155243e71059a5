//! How human text is laid out for its reader: the width to fit and whether
//! to colour. The binary decides both from the terminal; tests pass them.

use comfy_table::presets::UTF8_FULL_CONDENSED;
use comfy_table::{Color, ColumnConstraint, ContentArrangement, Table};

/// The reader's terminal, as far as rendering cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Style {
    /// Columns to fit in; `None`: no limit (a pipe or a file).
    pub width: Option<u16>,
    /// Colour the verdict, failing rows and failure lines.
    pub colour: bool,
}

impl Style {
    /// No width limit, no colour: what a file or pipe gets.
    pub const PLAIN: Style = Style {
        width: None,
        colour: false,
    };

    /// `text` in green when colouring.
    pub fn good(&self, text: &str) -> String {
        self.paint(text, "32")
    }

    /// `text` in red when colouring.
    pub fn bad(&self, text: &str) -> String {
        self.paint(text, "31")
    }

    /// `text` dimmed when colouring.
    pub fn dim(&self, text: &str) -> String {
        self.paint(text, "2")
    }

    fn paint(&self, text: &str, sgr: &str) -> String {
        if self.colour {
            format!("\x1b[{sgr}m{text}\x1b[0m")
        } else {
            text.to_string()
        }
    }

    /// The colour of a failing row, when colouring.
    pub fn bad_cell(&self) -> Option<Color> {
        self.colour.then_some(Color::Red)
    }
}

/// A table in the house style with these headers.
pub fn new_table(header: Vec<String>) -> Table {
    let mut table = Table::new();
    table
        .load_style(UTF8_FULL_CONDENSED)
        .force_no_tty()
        .set_header(header);
    table
}

/// The first of `layouts` (richest first) whose table fits the style's
/// width; when none does, the last, laid out dynamically with the
/// `unbroken` columns (addresses, names) kept whole. `build` makes the table
/// of a layout.
pub fn fit<L: Copy>(
    layouts: &[L],
    style: &Style,
    unbroken: impl Fn(L) -> Vec<usize>,
    build: impl Fn(L) -> Table,
) -> Table {
    let Some((&last, richer)) = layouts.split_last() else {
        return Table::new();
    };
    let finish = |mut table: Table| {
        if style.colour {
            table.enforce_styling();
        }
        table
    };
    let Some(width) = style.width else {
        return finish(build(layouts[0]));
    };
    for &layout in richer.iter().chain([&last]) {
        let table = build(layout);
        if widest_line(&table.to_string()) <= width as usize {
            return finish(table);
        }
    }
    let mut table = build(last);
    table
        .set_content_arrangement(ContentArrangement::Dynamic)
        .set_width(width);
    for column in unbroken(last) {
        if let Some(c) = table.column_mut(column) {
            c.set_constraint(ColumnConstraint::ContentWidth);
        }
    }
    finish(table)
}

/// Display width of the widest line (every character the tables use is one
/// column wide).
pub fn widest_line(text: &str) -> usize {
    text.lines().map(|l| l.chars().count()).max().unwrap_or(0)
}

/// `text` wrapped at spaces to the style's width, continuation lines
/// indented by `indent` spaces; a word longer than a line stays whole.
pub fn wrap(text: &str, style: &Style, indent: usize) -> String {
    let Some(width) = style.width.map(usize::from) else {
        return text.to_string();
    };
    let mut lines: Vec<String> = Vec::new();
    let mut line = String::new();
    let mut started = false;
    for word in text.split(' ') {
        if started && line.chars().count() + 1 + word.chars().count() > width {
            lines.push(std::mem::take(&mut line));
            line = " ".repeat(indent);
            started = false;
        }
        if started {
            line.push(' ');
        }
        line.push_str(word);
        started = true;
    }
    lines.push(line);
    lines.join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(width: u16) -> Style {
        Style {
            width: Some(width),
            colour: false,
        }
    }

    #[test]
    fn wrap_breaks_at_spaces_and_indents_continuations() {
        let text = "bound: 1657..1676 of 5000 calls per endpoint (exact: round_robin)";
        let wrapped = wrap(text, &at(30), 2);
        for line in wrapped.lines() {
            assert!(line.chars().count() <= 30, "{wrapped}");
        }
        assert_eq!(wrapped.replace("\n  ", " "), text);
        assert_eq!(wrap(text, &Style::PLAIN, 2), text);
    }

    #[test]
    fn a_long_word_is_never_split() {
        let text = "at /grpclb/echo/10.1.0.7:50051-with-a-very-long-key";
        let wrapped = wrap(text, &at(10), 2);
        assert!(
            wrapped.contains("/grpclb/echo/10.1.0.7:50051-with-a-very-long-key"),
            "{wrapped}"
        );
    }

    #[test]
    fn colour_only_when_asked() {
        let on = Style {
            width: None,
            colour: true,
        };
        assert_eq!(Style::PLAIN.bad("FAIL"), "FAIL");
        assert_eq!(on.bad("FAIL"), "\x1b[31mFAIL\x1b[0m");
        assert_eq!(on.good("PASS"), "\x1b[32mPASS\x1b[0m");
    }
}
