#![allow(clippy::unwrap_used)]
use super::*;

#[test]
fn spans_of_statements() {
    let doc = "{\"Version\":\"2012-10-17\",\"Statement\":[{\"Effect\":\"Allow\",\"Action\":\"s3:*\",\"Resource\":\"*\"},\n{\"Effect\":\"Deny\",\"Action\":\"s3:Delete*\",\"Resource\":\"*\"}]}";
    let (s0, e0) = statement_span(doc, 0).unwrap();
    assert_eq!(
        s0,
        Position {
            line: 1,
            column: 38
        }
    );
    assert_eq!(e0.line, 1);
    let (s1, _) = statement_span(doc, 1).unwrap();
    assert_eq!(s1, Position { line: 2, column: 1 });
    assert!(statement_span(doc, 2).is_none());
    let single = "{\"Statement\":{\"Effect\":\"Allow\",\"Action\":\"*\",\"Resource\":\"*\"}}";
    let (s, e) = statement_span(single, 0).unwrap();
    assert_eq!(
        s,
        Position {
            line: 1,
            column: 14
        }
    );
    assert_eq!(e.column, single.len() - 1);
}
