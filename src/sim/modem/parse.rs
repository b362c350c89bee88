//! Command-line parsing of one virtual modem: a line after "AT" split into commands (V.250 §5.3),
//! their arguments, CR LF framing, and where the text typed after a `^HCMGS` prompt ends.
//!
//! What must always hold: no input makes these panic; a line that cannot be parsed is `None`
//! (the engine answers `ERROR`).

/// One parsed command of a (possibly chained) command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(in crate::sim::modem) struct Cmd {
    /// Upper case: "E", "&F", "S0", "+CMGS", "^ICCID".
    pub(in crate::sim::modem) name: String,
    pub(in crate::sim::modem) kind: Kind,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(in crate::sim::modem) enum Kind {
    Exec(String),
    Set(String),
    Read,
    Test,
}

/// Splits the part of a command line after "AT" into commands (V.250 §5.3: basic commands run
/// together, extended commands separated by ';'). None for a line that cannot be parsed.
pub(in crate::sim::modem) fn parse_commands(body: &str) -> Option<Vec<Cmd>> {
    let b: Vec<char> = body.chars().collect();
    let mut i = 0;
    let mut out = Vec::new();
    while i < b.len() {
        let c = b[i];
        if c == ' ' || c == ';' {
            i += 1;
            continue;
        }
        if "+^$%*#!".contains(c) {
            let start = i;
            i += 1;
            while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == '_' || b[i] == '.') {
                i += 1;
            }
            let name: String = b[start..i].iter().collect::<String>().to_ascii_uppercase();
            if name.len() < 2 {
                return None;
            }
            let kind = if b.get(i) == Some(&'=') && b.get(i + 1) == Some(&'?') {
                i += 2;
                Kind::Test
            } else if b.get(i) == Some(&'?') {
                i += 1;
                Kind::Read
            } else if b.get(i) == Some(&'=') {
                i += 1;
                let start = i;
                let mut quoted = false;
                while i < b.len() && (quoted || b[i] != ';') {
                    if b[i] == '"' {
                        quoted = !quoted;
                    }
                    i += 1;
                }
                Kind::Set(b[start..i].iter().collect())
            } else {
                let start = i;
                while i < b.len() && b[i] != ';' {
                    i += 1;
                }
                Kind::Exec(b[start..i].iter().collect::<String>().trim().to_string())
            };
            out.push(Cmd { name, kind });
        } else if c.is_ascii_alphabetic() || c == '&' {
            let mut name = String::new();
            if c == '&' {
                name.push('&');
                i += 1;
            }
            let letter = b.get(i)?.to_ascii_uppercase();
            if !letter.is_ascii_alphabetic() {
                return None;
            }
            name.push(letter);
            i += 1;
            if letter == 'S' && name == "S" {
                let start = i;
                while i < b.len() && b[i].is_ascii_digit() {
                    i += 1;
                }
                name.extend(&b[start..i]);
                if b.get(i) == Some(&'?') {
                    i += 1;
                    out.push(Cmd {
                        name,
                        kind: Kind::Read,
                    });
                    continue;
                }
                if b.get(i) == Some(&'=') {
                    i += 1;
                    let start = i;
                    while i < b.len() && b[i].is_ascii_digit() {
                        i += 1;
                    }
                    out.push(Cmd {
                        name,
                        kind: Kind::Set(b[start..i].iter().collect()),
                    });
                    continue;
                }
            }
            let start = i;
            while i < b.len() && b[i].is_ascii_digit() {
                i += 1;
            }
            out.push(Cmd {
                name,
                kind: Kind::Exec(b[start..i].iter().collect()),
            });
        } else {
            return None;
        }
    }
    Some(out)
}

/// Comma-separated arguments with quotes removed.
pub(in crate::sim::modem) fn args(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    for c in s.chars() {
        match c {
            '"' => quoted = !quoted,
            ',' if !quoted => out.push(std::mem::take(&mut cur).trim().to_string()),
            _ => cur.push(c),
        }
    }
    out.push(cur.trim().to_string());
    out
}

pub(in crate::sim::modem) fn num(a: &[String], i: usize) -> Option<u32> {
    a.get(i).and_then(|s| s.parse().ok())
}

pub(in crate::sim::modem) fn crlf(line: &str) -> Vec<u8> {
    format!("\r\n{line}\r\n").into_bytes()
}

/// Where the text after a `^HCMGS` prompt ends: (offset, 0x1A send or 0x1B cancel). UCS2 text
/// ends with the code unit 00 1A (00 1B cancels) on a code-unit boundary, so a character such
/// as U+4E1A (业) whose low byte is 0x1A never ends it; ASCII text ends at the first 1A/1B.
pub(in crate::sim::modem) fn text_end(input: &[u8], ucs2: bool) -> Option<(usize, u8)> {
    if ucs2 {
        input
            .chunks_exact(2)
            .position(|u| u[0] == 0 && (u[1] == 0x1A || u[1] == 0x1B))
            .map(|i| (i * 2, input[i * 2 + 1]))
    } else {
        input
            .iter()
            .position(|&b| b == 0x1A || b == 0x1B)
            .map(|i| (i, input[i]))
    }
}
