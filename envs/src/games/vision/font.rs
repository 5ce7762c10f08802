//! A tiny built-in 5×7 bitmap font: digits `0-9`, capitals `A-Z`, `-`, `.`
//! and space — all the chart labels need.
//!
//! Each glyph is 7 rows of 5 bits (bit 4 = leftmost column). Glyphs are
//! drawn with no anti-aliasing, scaled by whole pixels, with one column of
//! spacing: a string of `n` characters at scale `s` is `6·n·s − s` pixels
//! wide and `7·s` pixels tall. Embedding the font keeps renders byte-stable
//! on every platform.

/// Glyph width in font pixels.
pub const GLYPH_W: u32 = 5;
/// Glyph height in font pixels.
pub const GLYPH_H: u32 = 7;
/// Horizontal advance (glyph plus one column of spacing) in font pixels.
pub const ADVANCE: u32 = 6;

const DIGITS: [[u8; 7]; 10] = [
    [0b01110, 0b10001, 0b10011, 0b10101, 0b11001, 0b10001, 0b01110], // 0
    [0b00100, 0b01100, 0b00100, 0b00100, 0b00100, 0b00100, 0b01110], // 1
    [0b01110, 0b10001, 0b00001, 0b00010, 0b00100, 0b01000, 0b11111], // 2
    [0b11111, 0b00010, 0b00100, 0b00010, 0b00001, 0b10001, 0b01110], // 3
    [0b00010, 0b00110, 0b01010, 0b10010, 0b11111, 0b00010, 0b00010], // 4
    [0b11111, 0b10000, 0b11110, 0b00001, 0b00001, 0b10001, 0b01110], // 5
    [0b00110, 0b01000, 0b10000, 0b11110, 0b10001, 0b10001, 0b01110], // 6
    [0b11111, 0b00001, 0b00010, 0b00100, 0b01000, 0b01000, 0b01000], // 7
    [0b01110, 0b10001, 0b10001, 0b01110, 0b10001, 0b10001, 0b01110], // 8
    [0b01110, 0b10001, 0b10001, 0b01111, 0b00001, 0b00010, 0b01100], // 9
];

const LETTERS: [[u8; 7]; 26] = [
    [0b01110, 0b10001, 0b10001, 0b11111, 0b10001, 0b10001, 0b10001], // A
    [0b11110, 0b10001, 0b10001, 0b11110, 0b10001, 0b10001, 0b11110], // B
    [0b01110, 0b10001, 0b10000, 0b10000, 0b10000, 0b10001, 0b01110], // C
    [0b11100, 0b10010, 0b10001, 0b10001, 0b10001, 0b10010, 0b11100], // D
    [0b11111, 0b10000, 0b10000, 0b11110, 0b10000, 0b10000, 0b11111], // E
    [0b11111, 0b10000, 0b10000, 0b11110, 0b10000, 0b10000, 0b10000], // F
    [0b01110, 0b10001, 0b10000, 0b10111, 0b10001, 0b10001, 0b01111], // G
    [0b10001, 0b10001, 0b10001, 0b11111, 0b10001, 0b10001, 0b10001], // H
    [0b01110, 0b00100, 0b00100, 0b00100, 0b00100, 0b00100, 0b01110], // I
    [0b00111, 0b00010, 0b00010, 0b00010, 0b00010, 0b10010, 0b01100], // J
    [0b10001, 0b10010, 0b10100, 0b11000, 0b10100, 0b10010, 0b10001], // K
    [0b10000, 0b10000, 0b10000, 0b10000, 0b10000, 0b10000, 0b11111], // L
    [0b10001, 0b11011, 0b10101, 0b10101, 0b10001, 0b10001, 0b10001], // M
    [0b10001, 0b10001, 0b11001, 0b10101, 0b10011, 0b10001, 0b10001], // N
    [0b01110, 0b10001, 0b10001, 0b10001, 0b10001, 0b10001, 0b01110], // O
    [0b11110, 0b10001, 0b10001, 0b11110, 0b10000, 0b10000, 0b10000], // P
    [0b01110, 0b10001, 0b10001, 0b10001, 0b10101, 0b10010, 0b01101], // Q
    [0b11110, 0b10001, 0b10001, 0b11110, 0b10100, 0b10010, 0b10001], // R
    [0b01111, 0b10000, 0b10000, 0b01110, 0b00001, 0b00001, 0b11110], // S
    [0b11111, 0b00100, 0b00100, 0b00100, 0b00100, 0b00100, 0b00100], // T
    [0b10001, 0b10001, 0b10001, 0b10001, 0b10001, 0b10001, 0b01110], // U
    [0b10001, 0b10001, 0b10001, 0b10001, 0b10001, 0b01010, 0b00100], // V
    [0b10001, 0b10001, 0b10001, 0b10101, 0b10101, 0b10101, 0b01010], // W
    [0b10001, 0b10001, 0b01010, 0b00100, 0b01010, 0b10001, 0b10001], // X
    [0b10001, 0b10001, 0b10001, 0b01010, 0b00100, 0b00100, 0b00100], // Y
    [0b11111, 0b00001, 0b00010, 0b00100, 0b01000, 0b10000, 0b11111], // Z
];

const MINUS: [u8; 7] = [0, 0, 0, 0b11111, 0, 0, 0];
const DOT: [u8; 7] = [0, 0, 0, 0, 0, 0b01100, 0b01100];
const BLANK: [u8; 7] = [0; 7];

/// The glyph of `c` (lower case maps to upper case); `None` for
/// characters the font lacks.
pub fn glyph(c: char) -> Option<&'static [u8; 7]> {
    match c {
        '0'..='9' => Some(&DIGITS[c as usize - '0' as usize]),
        'A'..='Z' => Some(&LETTERS[c as usize - 'A' as usize]),
        'a'..='z' => Some(&LETTERS[c as usize - 'a' as usize]),
        '-' => Some(&MINUS),
        '.' => Some(&DOT),
        ' ' => Some(&BLANK),
        _ => None,
    }
}

/// Width in pixels of `text` at `scale`.
pub fn text_width(text: &str, scale: u32) -> u32 {
    let n = text.chars().count() as u32;
    if n == 0 {
        0
    } else {
        (ADVANCE * n - 1) * scale
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn glyphs_are_distinct_and_in_range() {
        let chars: Vec<char> = ('0'..='9').chain('A'..='Z').chain(['-', '.']).collect();
        let mut seen = std::collections::HashSet::new();
        for c in chars {
            let g = glyph(c).unwrap();
            assert!(g.iter().all(|row| *row < 32), "{c}");
            assert!(g.iter().any(|row| *row != 0), "{c} is blank");
            assert!(seen.insert(*g), "{c} duplicates another glyph");
        }
        assert!(glyph('?').is_none());
        assert_eq!(glyph('b'), glyph('B'));
        assert_eq!(text_width("10", 2), 22);
        assert_eq!(text_width("", 2), 0);
    }
}
