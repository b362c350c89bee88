//! Reading a recipients file uploaded on the send page: CSV (the `csv` crate; UTF-8, or GBK as
//! spreadsheet programs in China save it) or XLSX (`calamine`, the first sheet), each row a
//! number and an optional text of its own. A first row whose number has no digit is a header.
//!
//! What must always hold: no file makes it panic or read past [`MAX_ROWS`] rows; an XLSX whose
//! parts declare more than [`MAX_XLSX_UNPACKED`] bytes is refused before it is unpacked (a
//! small zip can stand for gigabytes); a bad row is kept as it was typed (the daemon's check
//! says why it is bad), never dropped silently.

use std::io::Cursor;

/// Largest upload (the same as the socket API's body limit).
pub const MAX_UPLOAD_BYTES: usize = crate::api::types::MAX_BODY_BYTES;
/// Most rows one upload may have (`POST /v1/recipients/check` takes at most this many).
pub const MAX_ROWS: usize = 10_000;
/// Most bytes an XLSX's parts may unpack to.
pub const MAX_XLSX_UNPACKED: u64 = 64 * 1024 * 1024;

/// One row of a file: the number as written, and its own text if the row has one.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Row {
    pub input: String,
    pub text: Option<String>,
}

/// Why a file could not be read.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum UploadError {
    #[error("the file is larger than {MAX_UPLOAD_BYTES} bytes")]
    TooLarge,
    #[error("the file has more than {MAX_ROWS} rows")]
    TooManyRows,
    #[error("the file has no rows")]
    Empty,
    #[error("not a CSV or XLSX file we can read: {0}")]
    Unreadable(String),
}

/// Reads `bytes` as XLSX when it is a zip (`PK\x03\x04`), else as CSV.
pub fn read(bytes: &[u8]) -> Result<Vec<Row>, UploadError> {
    if bytes.len() > MAX_UPLOAD_BYTES {
        return Err(UploadError::TooLarge);
    }
    let rows = if bytes.starts_with(b"PK\x03\x04") {
        read_xlsx(bytes)?
    } else {
        read_csv(bytes)?
    };
    if rows.is_empty() {
        return Err(UploadError::Empty);
    }
    Ok(rows)
}

/// The text of a CSV file: UTF-8 (a BOM dropped), else GBK.
fn decode(bytes: &[u8]) -> String {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    match std::str::from_utf8(bytes) {
        Ok(s) => s.to_owned(),
        Err(_) => encoding_rs::GBK.decode(bytes).0.into_owned(),
    }
}

fn read_csv(bytes: &[u8]) -> Result<Vec<Row>, UploadError> {
    let text = decode(bytes);
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .trim(csv::Trim::All)
        .from_reader(text.as_bytes());
    let mut cells = Vec::new();
    for record in reader.records() {
        let record = record.map_err(|e| UploadError::Unreadable(e.to_string()))?;
        cells.push(record.iter().map(str::to_owned).collect::<Vec<_>>());
        if cells.len() > MAX_ROWS + 1 {
            return Err(UploadError::TooManyRows);
        }
    }
    rows_of(cells)
}

fn read_xlsx(bytes: &[u8]) -> Result<Vec<Row>, UploadError> {
    use calamine::{Data, Reader, Xlsx};
    let unreadable = |e: &dyn std::fmt::Display| UploadError::Unreadable(e.to_string());
    {
        let mut zip = zip::ZipArchive::new(Cursor::new(bytes)).map_err(|e| unreadable(&e))?;
        let mut unpacked: u64 = 0;
        for i in 0..zip.len() {
            let f = zip.by_index_raw(i).map_err(|e| unreadable(&e))?;
            unpacked = unpacked.saturating_add(f.size());
        }
        if unpacked > MAX_XLSX_UNPACKED {
            return Err(UploadError::TooLarge);
        }
    }
    let mut book: Xlsx<_> = Xlsx::new(Cursor::new(bytes)).map_err(|e| unreadable(&e))?;
    let first = book
        .sheet_names()
        .first()
        .cloned()
        .ok_or(UploadError::Empty)?;
    let range = book.worksheet_range(&first).map_err(|e| unreadable(&e))?;
    if range.height() > MAX_ROWS + 1 {
        return Err(UploadError::TooManyRows);
    }
    let cell = |d: &Data| -> String {
        match d {
            Data::Empty => String::new(),
            Data::String(s) => s.trim().to_owned(),
            // A number typed into a cell is a float; a phone number has no fraction.
            Data::Float(f) if f.fract() == 0.0 && f.abs() < 1e17 => format!("{}", *f as i64),
            Data::Float(f) => f.to_string(),
            Data::Int(i) => i.to_string(),
            other => other.to_string(),
        }
    };
    let cells = range
        .rows()
        .map(|r| r.iter().map(cell).collect::<Vec<_>>())
        .collect();
    rows_of(cells)
}

/// Rows from cells: the first column the number, the second an optional text; blank rows
/// skipped, a first row without a digit taken as a header.
fn rows_of(cells: Vec<Vec<String>>) -> Result<Vec<Row>, UploadError> {
    let mut rows = Vec::new();
    for (i, row) in cells.into_iter().enumerate() {
        let input = row.first().map(|s| s.trim().to_owned()).unwrap_or_default();
        let text = row
            .get(1)
            .map(|s| s.trim().to_owned())
            .filter(|s| !s.is_empty());
        if input.is_empty() && text.is_none() {
            continue;
        }
        if i == 0 && !input.bytes().any(|b| b.is_ascii_digit()) {
            continue;
        }
        rows.push(Row { input, text });
        if rows.len() > MAX_ROWS {
            return Err(UploadError::TooManyRows);
        }
    }
    Ok(rows)
}

/// Numbers typed or pasted: split on line breaks, tabs, commas (also the full-width one) and
/// semicolons; spaces inside a number ("139 1234 5678") stay for the daemon to judge.
pub fn split_numbers(typed: &str) -> Vec<String> {
    typed
        .split(['\n', '\r', '\t', ',', '，', ';', '；', '、'])
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_with_header_texts_quotes_and_gbk() {
        let csv = "号码,内容\n13912345678,你好\n\"13800000000\",\"a, \"\"quoted\"\" text\"\n\n13700000000\n";
        let rows = read(csv.as_bytes()).unwrap();
        assert_eq!(rows.len(), 3);
        assert_eq!(rows[0].text.as_deref(), Some("你好"));
        assert_eq!(rows[1].text.as_deref(), Some("a, \"quoted\" text"));
        assert_eq!(
            rows[2],
            Row {
                input: "13700000000".into(),
                text: None
            }
        );
        let (gbk, _, _) = encoding_rs::GBK.encode("13912345678,你好\n");
        let rows = read(&gbk).unwrap();
        assert_eq!(rows[0].text.as_deref(), Some("你好"));
        assert_eq!(
            read(b"\xEF\xBB\xBFnumber\n").unwrap_err(),
            UploadError::Empty
        );
    }

    #[test]
    fn bad_rows_are_kept_and_limits_hold() {
        let rows = read(b"13912345678\nnot a number\n123\n").unwrap();
        assert_eq!(rows.len(), 3, "a bad row is kept for the check to judge");
        let many: String = (0..MAX_ROWS + 2).map(|i| format!("139{i:08}\n")).collect();
        assert_eq!(read(many.as_bytes()).unwrap_err(), UploadError::TooManyRows);
        assert!(matches!(
            read(b"PK\x03\x04not really a zip"),
            Err(UploadError::Unreadable(_))
        ));
    }

    /// A minimal XLSX (one sheet, shared and inline strings, numbers typed as numbers), zipped
    /// stored (no compression) with the zip crate, as a spreadsheet program would lay it out.
    fn xlsx(rows: &str) -> Vec<u8> {
        use std::io::Write;
        let files = [
            ("[Content_Types].xml", r#"<?xml version="1.0" encoding="UTF-8"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"><Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/><Default Extension="xml" ContentType="application/xml"/><Override PartName="/xl/workbook.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/><Override PartName="/xl/worksheets/sheet1.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/></Types>"#.to_owned()),
            ("_rels/.rels", r#"<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" Target="xl/workbook.xml"/></Relationships>"#.to_owned()),
            ("xl/workbook.xml", r#"<?xml version="1.0" encoding="UTF-8"?><workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships"><sheets><sheet name="号码" sheetId="1" r:id="rId1"/></sheets></workbook>"#.to_owned()),
            ("xl/_rels/workbook.xml.rels", r#"<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/worksheet" Target="worksheets/sheet1.xml"/></Relationships>"#.to_owned()),
            ("xl/worksheets/sheet1.xml", format!(r#"<?xml version="1.0" encoding="UTF-8"?><worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><sheetData>{rows}</sheetData></worksheet>"#)),
        ];
        let mut out = std::io::Cursor::new(Vec::new());
        let mut zip = zip::ZipWriter::new(&mut out);
        let stored = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Stored);
        for (name, body) in files {
            zip.start_file(name, stored).unwrap();
            zip.write_all(body.as_bytes()).unwrap();
        }
        zip.finish().unwrap();
        out.into_inner()
    }

    #[test]
    fn xlsx_rows_numbers_and_texts() {
        let rows = r#"<row r="1"><c r="A1" t="inlineStr"><is><t>号码</t></is></c><c r="B1" t="inlineStr"><is><t>内容</t></is></c></row><row r="2"><c r="A2"><v>13912345678</v></c><c r="B2" t="inlineStr"><is><t>您好</t></is></c></row><row r="3"><c r="A3" t="inlineStr"><is><t>+86 138 0000 0000</t></is></c></row><row r="4"><c r="A4" t="inlineStr"><is><t>abc</t></is></c></row>"#;
        let got = read(&xlsx(rows)).unwrap();
        assert_eq!(
            got,
            vec![
                Row {
                    input: "13912345678".into(),
                    text: Some("您好".into())
                },
                Row {
                    input: "+86 138 0000 0000".into(),
                    text: None
                },
                Row {
                    input: "abc".into(),
                    text: None
                },
            ]
        );
    }

    #[test]
    fn typed_numbers_split_on_separators() {
        assert_eq!(
            split_numbers("139 1234 5678\n13800000000，13700000000;136"),
            vec!["139 1234 5678", "13800000000", "13700000000", "136"]
        );
    }

    proptest::proptest! {
        #[test]
        fn no_file_panics(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..400)) {
            let _ = read(&bytes);
            let mut zipish = b"PK\x03\x04".to_vec();
            zipish.extend_from_slice(&bytes);
            let _ = read(&zipish);
        }
    }
}
