#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use super::*;

fn m(p: &str, t: &str) -> bool {
    Pattern::new(p).is_match(t)
}

#[test]
fn literal_and_wildcards() {
    assert!(m("abc", "abc"));
    assert!(!m("abc", "abcd"));
    assert!(!m("abc", "ab"));
    assert!(m("", ""));
    assert!(!m("", "a"));
    assert!(m("*", ""));
    assert!(m("*", "anything"));
    assert!(m("a*", "a"));
    assert!(m("a*c", "abbbc"));
    assert!(!m("a*c", "abbbd"));
    assert!(m("a?c", "abc"));
    assert!(!m("a?c", "ac"));
    assert!(!m("a?c", "abbc"));
    assert!(m("*a*b*c*", "xxaxxbxxcxx"));
    assert!(!m("*a*b*c*", "xxcxxbxxaxx"));
    assert!(m("a*a", "aa"));
    assert!(!m("a*a", "a"));
    assert!(m("?*?", "ab"));
    assert!(!m("?*?", "a"));
    assert!(m("*?b", "ab"));
}

#[test]
fn question_mark_is_one_character_not_one_byte() {
    assert!(m("caf?", "café"));
    assert!(m("?", "é"));
    assert!(!m("??", "é"));
    assert!(m("*é", "aé"));
}

#[test]
fn verbatim_pieces_are_literal() {
    let p = Pattern::compile(&[Piece::Wild("a"), Piece::Verbatim("*"), Piece::Wild("*")]);
    assert!(p.is_match("a*xyz"));
    assert!(!p.is_match("abxyz"));
    let q = Pattern::compile(&[Piece::Verbatim("?")]);
    assert!(q.is_match("?"));
    assert!(!q.is_match("x"));
}

#[test]
fn pathological_patterns_are_fast() {
    let text = "a".repeat(20_000);
    let pattern = format!("{}b", "*a".repeat(200));
    let start = std::time::Instant::now();
    assert!(!m(&pattern, &text));
    assert!(m(&"*a".repeat(200), &text));
    assert!(start.elapsed() < std::time::Duration::from_secs(2));
}

#[test]
fn helpers() {
    assert!(Pattern::new("**").matches_everything());
    assert!(Pattern::new("*").matches_everything());
    assert!(!Pattern::new("*a").matches_everything());
    assert!(!Pattern::new("").matches_everything());
}

fn arn(p: &str, v: &str) -> bool {
    ArnPattern::new(p).is_match(v)
}

#[test]
fn arn_fields_are_matched_separately() {
    assert!(arn("arn:aws:s3:::bucket/*", "arn:aws:s3:::bucket/a/b:c"));
    assert!(arn(
        "arn:aws:iam::*:role/*",
        "arn:aws:iam::123456789012:role/x"
    ));
    // A wildcard in the account field does not swallow the resource field's leading part.
    assert!(!arn("arn:aws:iam::*", "arn:aws:iam::123456789012:role/x"));
    // A wildcard in the service field cannot cross into region/account.
    assert!(!arn("arn:aws:*:role/x", "arn:aws:iam::1:role/x"));
    assert!(arn("arn:aws:*:*:*:role/x", "arn:aws:iam::1:role/x"));
    assert!(arn("arn:*:iam::1:role/x", "arn:aws-cn:iam::1:role/x"));
    assert!(!arn("arn:aws:iam::1:role/X", "arn:aws:iam::1:role/x"));
    assert!(arn(
        "arn:aws:iam::1:role/a:b*",
        "arn:aws:iam::1:role/a:bc:d"
    ));
    assert!(arn(
        "arn:aws:ec2:us-east-?:1:instance/*",
        "arn:aws:ec2:us-east-1:1:instance/i-1"
    ));
    assert!(!arn(
        "arn:aws:ec2:us-east-?:1:instance/*",
        "arn:aws:ec2:us-east-10:1:instance/i-1"
    ));
}

#[test]
fn arn_star_and_non_arn_values() {
    assert!(arn("*", "arn:aws:s3:::b"));
    assert!(arn("*", "not an arn"));
    assert!(arn("**", ""));
    assert!(!arn("arn:aws:s3:::*", "*"));
    assert!(arn("foo*", "foobar"));
    assert!(!arn("arn:aws:s3:::b", "arn:aws:s3::"));
}

fn res(p: &str, v: &str) -> bool {
    ArnPattern::new_resource(p).is_match(v)
}

#[test]
fn resource_star_ending_a_field_crosses_colons() {
    let log = "arn:aws:logs:us-east-1:111122223333:log-group:/aws/lambda/fn";
    // The IAM User Guide's rule; the Arn* operators keep the fields apart.
    assert!(res("arn:aws:logs:*:log-group:/aws/lambda/*", log));
    assert!(!arn("arn:aws:logs:*:log-group:/aws/lambda/*", log));
    assert!(res("arn:aws:logs:us-*:log-group:/aws/lambda/*", log));
    assert!(!res("arn:aws:logs:eu-*:log-group:/aws/lambda/*", log));
    assert!(!res("arn:aws:logs:*:log-group:/aws/lambda/x*", log));
    // A `*` inside a field, a `?` and a literal `*` from `${*}` stay inside the field.
    assert!(!res("arn:aws:logs:u*1:log-group:/aws/lambda/*", log));
    assert!(res(
        "arn:aws:logs:u*1:111122223333:log-group:/aws/lambda/*",
        log
    ));
    assert!(!res("arn:aws:logs:?:log-group:/aws/lambda/*", log));
    let verbatim = ArnPattern::compile_resource(&[
        Piece::Wild("arn:aws:logs:"),
        Piece::Verbatim("*"),
        Piece::Wild(":log-group:/aws/lambda/*"),
    ]);
    assert!(!verbatim.is_match(log));
    // Unchanged cases: fixed fields, a star alone in its field, the resource field.
    assert!(res(
        "arn:aws:ec2:*:*:instance/*",
        "arn:aws:ec2:us-east-1:1:instance/i-1"
    ));
    assert!(!res(
        "arn:aws:ec2:us-east-1:*:instance/*",
        "arn:aws:ec2:us-west-2:1:instance/i-1"
    ));
    assert!(res("arn:aws:iam::*:role/x", "arn:aws:iam::1:role/x"));
    assert!(res("arn:aws:iam::*:role/x", "arn:aws:iam::1:a:role/x"));
    assert!(!res("arn:aws:iam::*:role/x", "arn:aws:iam::1:role/y"));
    assert!(res("arn:aws:s3:::b/*", "arn:aws:s3:::b/a:b"));
    assert!(!res("arn:aws:s3:::b", "arn:aws:s3:::b:c"));
    assert!(res("*", "anything"));
}

#[test]
fn resource_crossing_is_linear_on_many_fields() {
    let value = format!("arn:aws:s3:{}:x", "a:".repeat(5_000));
    let start = std::time::Instant::now();
    assert!(!res("arn:*:*:*:*:y", &value));
    assert!(res("arn:*:*:*:*:x", &value));
    assert!(start.elapsed() < std::time::Duration::from_secs(2));
}

// ------------------------------------------------------------ regex oracle

use proptest::prelude::*;

fn translate(pattern: &str, any_run: &str, any_one: &str) -> String {
    let mut re = String::new();
    for c in pattern.chars() {
        match c {
            '*' => re.push_str(any_run),
            '?' => re.push_str(any_one),
            c => re.push_str(&regex_lite::escape(&c.to_string())),
        }
    }
    re
}

fn oracle(pattern: &str, text: &str) -> bool {
    let re = format!("(?s)^{}$", translate(pattern, ".*", "."));
    regex_lite::Regex::new(&re).unwrap().is_match(text)
}

/// ARN rule by regex: the first five fields' wildcards cannot match ':'.
fn arn_oracle(pattern: &str, value: &str) -> bool {
    if !pattern.is_empty() && pattern.chars().all(|c| c == '*') {
        return true;
    }
    let value_is_arn = value.matches(':').count() >= 5;
    let fields: Vec<&str> = pattern.splitn(6, ':').collect();
    match (fields.len() == 6, value_is_arn) {
        (true, true) => {
            let mut re = String::from("(?s)^");
            for (i, f) in fields.iter().enumerate() {
                if i > 0 {
                    re.push(':');
                }
                if i < 5 {
                    re.push_str(&translate(f, "[^:]*", "[^:]"));
                } else {
                    re.push_str(&translate(f, ".*", "."));
                }
            }
            re.push('$');
            regex_lite::Regex::new(&re).unwrap().is_match(value)
        }
        (false, true) => false,
        (_, false) => oracle(pattern, value),
    }
}

/// The `Resource` rule by regex: in the first five fields a `*` that is the field's last
/// character matches anything (also `:`); other wildcards there cannot match `:`.
fn resource_oracle(pattern: &str, value: &str) -> bool {
    if !pattern.is_empty() && pattern.chars().all(|c| c == '*') {
        return true;
    }
    let value_is_arn = value.matches(':').count() >= 5;
    let fields: Vec<&str> = pattern.splitn(6, ':').collect();
    match (fields.len() == 6, value_is_arn) {
        (true, true) => {
            let mut re = String::from("(?s)^");
            for (i, f) in fields.iter().enumerate() {
                if i > 0 {
                    re.push(':');
                }
                if i < 5 {
                    let body = f.strip_suffix('*');
                    re.push_str(&translate(body.unwrap_or(f), "[^:]*", "[^:]"));
                    if body.is_some() {
                        re.push_str(".*");
                    }
                } else {
                    re.push_str(&translate(f, ".*", "."));
                }
            }
            re.push('$');
            regex_lite::Regex::new(&re).unwrap().is_match(value)
        }
        (false, true) => false,
        (_, false) => oracle(pattern, value),
    }
}

fn pattern_strategy() -> impl Strategy<Value = String> {
    proptest::collection::vec(
        prop::sample::select(vec!['a', 'b', ':', '/', '*', '?', 'é']),
        0..12,
    )
    .prop_map(|cs| cs.into_iter().collect())
}

fn text_strategy() -> impl Strategy<Value = String> {
    proptest::collection::vec(prop::sample::select(vec!['a', 'b', ':', '/', 'é']), 0..16)
        .prop_map(|cs| cs.into_iter().collect())
}

fn arn_like_strategy(alphabet: Vec<char>) -> impl Strategy<Value = String> {
    proptest::collection::vec(
        proptest::collection::vec(prop::sample::select(alphabet), 0..4)
            .prop_map(|cs| cs.into_iter().collect::<String>()),
        4..9,
    )
    .prop_map(|fields| fields.join(":"))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2_000))]

    #[test]
    fn matcher_agrees_with_regex(pattern in pattern_strategy(), text in text_strategy()) {
        prop_assert_eq!(Pattern::new(&pattern).is_match(&text), oracle(&pattern, &text), "{:?} {:?}", pattern, text);
    }

    #[test]
    fn matcher_agrees_with_regex_on_matching_texts(pattern in pattern_strategy(), fill in text_strategy()) {
        // Build a text that matches by construction, to exercise the positive side.
        let mut text = String::new();
        let mut fillers = fill.chars().cycle();
        for c in pattern.chars() {
            match c {
                '*' => { for _ in 0..(fill.len() % 3) { text.extend(fillers.next()); } }
                '?' => text.push(fillers.next().unwrap_or('x')),
                c => text.push(c),
            }
        }
        prop_assert!(oracle(&pattern, &text));
        prop_assert!(Pattern::new(&pattern).is_match(&text), "{:?} {:?}", pattern, text);
    }

    #[test]
    fn arn_matcher_agrees_with_regex(
        pattern in arn_like_strategy(vec!['a', 'b', '/', '*', '?']),
        value in arn_like_strategy(vec!['a', 'b', '/']),
    ) {
        prop_assert_eq!(ArnPattern::new(&pattern).is_match(&value), arn_oracle(&pattern, &value), "{:?} {:?}", pattern, value);
    }

    #[test]
    fn resource_matcher_agrees_with_regex(
        pattern in arn_like_strategy(vec!['a', 'b', '/', '*', '?']),
        value in arn_like_strategy(vec!['a', 'b', '/']),
    ) {
        prop_assert_eq!(ArnPattern::new_resource(&pattern).is_match(&value), resource_oracle(&pattern, &value), "{:?} {:?}", pattern, value);
    }

    #[test]
    fn resource_matcher_agrees_with_regex_on_free_text(pattern in pattern_strategy(), value in text_strategy()) {
        prop_assert_eq!(ArnPattern::new_resource(&pattern).is_match(&value), resource_oracle(&pattern, &value), "{:?} {:?}", pattern, value);
    }

    #[test]
    fn arn_matcher_agrees_with_regex_on_free_text(pattern in pattern_strategy(), value in text_strategy()) {
        prop_assert_eq!(ArnPattern::new(&pattern).is_match(&value), arn_oracle(&pattern, &value), "{:?} {:?}", pattern, value);
    }
}
