#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use super::*;

#[test]
fn keeps_duplicates_and_order() {
    for doc in [
        parse_serde(r#"{"b":1,"a":2,"b":3}"#).unwrap(),
        parse_fast(r#"{"b":1,"a":2,"b":3}"#).unwrap().0,
    ] {
        let entries = doc.object(doc.root()).unwrap();
        let keys: Vec<&str> = entries.iter().map(|(k, _)| k.as_ref()).collect();
        assert_eq!(keys, ["b", "a", "b"]);
        assert!(check_duplicates(entries, || "policy".into()).is_err());
        assert!(matches!(&entries[0].0, Cow::Borrowed(_)));
    }
    let escaped = parse(r#"{"a\u0062":["x\n"]}"#).unwrap();
    let entries = escaped.object(escaped.root()).unwrap();
    assert_eq!(entries[0].0, "ab");
    assert_eq!(
        escaped.array(&entries[0].1).unwrap(),
        [Json::String("x\n".into())]
    );
}

#[test]
fn nested_containers_keep_their_own_children() {
    let text = r#"[[1,[2,3]],{"a":[4],"b":{"c":5}},6]"#;
    for doc in [parse_serde(text).unwrap(), parse_fast(text).unwrap().0] {
        let top = doc.array(doc.root()).unwrap();
        assert_eq!(top.len(), 3);
        let first = doc.array(&top[0]).unwrap();
        assert_eq!(first[0], Json::Number("1".into()));
        assert_eq!(
            doc.array(&first[1]).unwrap(),
            [Json::Number("2".into()), Json::Number("3".into())]
        );
        let obj = doc.object(&top[1]).unwrap();
        assert_eq!(obj.len(), 2);
        assert_eq!(doc.array(&obj[0].1).unwrap(), [Json::Number("4".into())]);
        let inner = doc.object(&obj[1].1).unwrap();
        assert_eq!(inner[0].0, "c");
        assert_eq!(top[2], Json::Number("6".into()));
    }
}

#[test]
fn numbers_become_text() {
    assert_eq!(parse("3600").unwrap().root, Json::Number("3600".into()));
    assert_eq!(parse("-7").unwrap().root, Json::Number("-7".into()));
    assert_eq!(parse("1.5").unwrap().root, Json::Number("1.5".into()));
}

#[test]
fn rejects_trailing_garbage_and_bad_json() {
    assert!(matches!(parse("{} x"), Err(PolicyError::Syntax(_))));
    assert!(matches!(parse("{"), Err(PolicyError::Syntax(_))));
    assert!(matches!(parse(""), Err(PolicyError::Syntax(_))));
}

#[test]
fn size_ignores_whitespace_outside_strings_only() {
    assert_eq!(policy_size("{ \"a b\" : 1 }\n"), 9);
    assert_eq!(policy_size(r#"{"a\" ":1}"#), 10);
    assert_eq!(policy_size("{\"é\\\"ü\" : 1}"), 10);
    assert_eq!(policy_size("é ü"), 2);
}

/// The character-by-character definition of [`policy_size`].
fn reference_size(text: &str) -> usize {
    let mut count = 0usize;
    let mut in_string = false;
    let mut escaped = false;
    for c in text.chars() {
        if in_string {
            count += 1;
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                in_string = false;
            }
        } else if c == '"' {
            in_string = true;
            count += 1;
        } else if !matches!(c, ' ' | '\t' | '\n' | '\r') {
            count += 1;
        }
    }
    count
}

#[test]
fn fast_parser_handles_policies_and_defers_the_rest() {
    let doc = r#" {"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["s3:*"],
            "Resource":"*","Condition":{"NumericLessThan":{"k:n":[1.50,-0,3600,1e3]},"Bool":{"k:b":true},"X":null}}]} "#;
    assert_eq!(
        parse_fast(doc),
        Some((parse_serde(doc).unwrap(), policy_size(doc)))
    );
    for deferred in [
        "",
        "{",
        "{} x",
        r#"{"a":1,}"#,
        "[1,]",
        "[01]",
        "[1.]",
        r#"["\x"]"#,
        r#"["\ud800"]"#,
        "[\"a\u{1}\"]",
        "nul",
        "\u{feff}{}",
        "[1e999]",
    ] {
        assert_eq!(parse_fast(deferred), None, "{deferred:?}");
    }
    let deep = format!(
        "{}{}",
        "[".repeat(FAST_MAX_DEPTH + 1),
        "]".repeat(FAST_MAX_DEPTH + 1)
    );
    assert_eq!(parse_fast(&deep), None);
    assert!(parse(&deep).is_ok());
    let escaped = r#"{"a\"b":"\u00e9\ud83d\ude00\n"}"#;
    assert_eq!(
        parse_fast(escaped).map(|(j, _)| j),
        Some(parse_serde(escaped).unwrap())
    );
}

use proptest::prelude::*;

fn json_value() -> impl Strategy<Value = serde_json::Value> {
    use serde_json::Value;
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        "[a-z\"\\\\/\u{0}-\u{1f}é😀 ]{0,8}".prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 32, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(serde_json::Value::Array),
            prop::collection::vec(("[a-zA-Z:\"\\\\]{0,6}", inner), 0..6)
                .prop_map(|kv| serde_json::Value::Object(kv.into_iter().collect())),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2_000))]

    #[test]
    fn fast_parser_agrees_with_serde_json_on_valid_documents(value in json_value(), pretty in any::<bool>()) {
        let text = if pretty {
            serde_json::to_string_pretty(&value).unwrap()
        } else {
            serde_json::to_string(&value).unwrap()
        };
        let fast = parse_fast(&text);
        prop_assert!(fast.is_some(), "{}", text);
        prop_assert_eq!(fast, Some((parse_serde(&text).unwrap(), policy_size(&text))), "{}", text);
    }

    #[test]
    fn fast_parser_never_accepts_what_serde_json_rejects(
        text in "[ \t\n{}\\[\\],:\"\\\\a-c0-2.eE+\\-tfnulrs\u{0}é]{0,24}",
    ) {
        if let Some((fast, size)) = parse_fast(&text) {
            prop_assert_eq!(Ok(fast), parse_serde(&text), "{:?}", text);
            prop_assert_eq!(size, policy_size(&text), "{:?}", text);
        }
        prop_assert!(fast_path_agrees(&text), "{:?}", text);
    }

    #[test]
    fn fast_parser_agrees_on_mutated_documents(
        value in json_value(),
        edits in prop::collection::vec((any::<prop::sample::Index>(), prop::sample::select(vec!['{', '}', '[', ']', ',', ':', '"', '\\', ' ', '0', '-', 'e', '.', 'u', 'a', '\u{1}'])), 1..4),
    ) {
        let mut chars: Vec<char> = serde_json::to_string(&value).unwrap().chars().collect();
        for (at, c) in edits {
            let i = at.index(chars.len() + 1);
            chars.insert(i, c);
        }
        let text: String = chars.into_iter().collect();
        if let Some((fast, size)) = parse_fast(&text) {
            prop_assert_eq!(Ok(fast), parse_serde(&text), "{:?}", text);
            prop_assert_eq!(size, policy_size(&text), "{:?}", text);
        }
    }

    #[test]
    fn policy_size_agrees_with_its_definition(text in "[ \t\n\"\\\\a:é😀{}]{0,40}") {
        prop_assert_eq!(policy_size(&text), reference_size(&text), "{:?}", text);
    }
}

#[test]
fn writes_escaped_strings() {
    let mut out = String::new();
    write_str(&mut out, "a\"b\\c\n\u{1}");
    assert_eq!(out, r#""a\"b\\c\n\u0001""#);
    let back: String = serde_json::from_str(&out).unwrap();
    assert_eq!(back, "a\"b\\c\n\u{1}");
}
