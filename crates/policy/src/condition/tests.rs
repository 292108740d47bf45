#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use super::*;

#[test]
fn operator_names() {
    for kind in OperatorKind::ALL {
        let op = ConditionOperator::parse(kind.as_str()).unwrap();
        assert_eq!(op.to_string(), kind.as_str());
    }
    let op = ConditionOperator::parse("ForAnyValue:StringLikeIfExists").unwrap();
    assert_eq!(op.kind, OperatorKind::StringLike);
    assert!(op.if_exists);
    assert_eq!(op.qualifier, Some(SetQualifier::ForAnyValue));
    assert_eq!(op.to_string(), "ForAnyValue:StringLikeIfExists");
    for bad in [
        "stringequals",
        "StringEqual",
        "NullIfExists",
        "ForAllValues:Null",
        "ForAllValues:",
        "ForSomeValues:StringEquals",
        "IfExists",
        "StringEqualsIfExistsIfExists",
        "",
    ] {
        assert!(ConditionOperator::parse(bad).is_none(), "{bad}");
    }
}

#[test]
fn numbers() {
    assert_eq!(parse_number("10"), Some(10.0));
    assert_eq!(parse_number("-1.5"), Some(-1.5));
    assert_eq!(parse_number("+3"), Some(3.0));
    assert_eq!(parse_number(".5"), Some(0.5));
    assert_eq!(parse_number("1e3"), Some(1000.0));
    for bad in [
        "", "-", ".", "inf", "NaN", "infinity", "1e", "1.2.3", "0x10", " 1", "1 ", "1e999",
    ] {
        assert_eq!(parse_number(bad), None, "{bad}");
    }
}

#[test]
fn dates() {
    let day = 19_723i64 * 86_400_000; // 2024-01-01
    assert_eq!(parse_date("2024-01-01"), Some(day));
    assert_eq!(parse_date("2024-01-01T00:00:00Z"), Some(day));
    assert_eq!(parse_date("2024-01-01T00:00Z"), Some(day));
    assert_eq!(parse_date("2024-01-01T00:00:00.250Z"), Some(day + 250));
    assert_eq!(parse_date("2024-01-01T02:00:00+02:00"), Some(day));
    assert_eq!(parse_date("2023-12-31T19:00:00-0500"), Some(day));
    assert_eq!(parse_date("20240101T000000Z"), Some(day));
    assert_eq!(parse_date("2024-01-01T00:00:00"), Some(day));
    assert_eq!(parse_date("1704067200"), Some(day));
    assert_eq!(parse_date("1704067200.5"), Some(day + 500));
    assert_eq!(parse_date("1970-01-01T00:00:00Z"), Some(0));
    assert_eq!(parse_date("2000-02-29"), Some(11_016 * 86_400_000));
    assert_eq!(parse_date("1969-12-31T23:59:59Z"), Some(-1000));
    for bad in [
        "",
        "2024-13-01",
        "2023-02-29",
        "1900-02-29",
        "2024-01-32",
        "2024-01-01T24:00:00Z",
        "2024-01-01T00:60Z",
        "2024-01-01T",
        "2024-01-01X",
        "2024-01-01T00:00:00.Z",
        "2024/01/01",
        "yesterday",
        "1.2.3",
    ] {
        assert_eq!(parse_date(bad), None, "{bad}");
    }
}

#[test]
fn base64() {
    assert_eq!(decode_base64("aGVsbG8=").unwrap(), b"hello");
    assert_eq!(decode_base64("aGVsbG8").unwrap(), b"hello");
    assert_eq!(decode_base64("aGk=").unwrap(), b"hi");
    assert_eq!(decode_base64("").unwrap(), b"");
    assert_eq!(decode_base64("QUJD").unwrap(), b"ABC");
    assert!(decode_base64("a").is_none());
    assert!(decode_base64("aGVsbG8*").is_none());
    assert!(decode_base64("aGk==").is_none());
    assert!(decode_base64("aGVsbG9=").is_none(), "non-zero padding bits");
}

#[test]
fn cidrs() {
    let c = Cidr::parse("10.1.2.3/8").unwrap();
    assert!(c.contains("10.200.0.1".parse().unwrap()));
    assert!(!c.contains("11.0.0.1".parse().unwrap()));
    let host = Cidr::parse("192.0.2.7").unwrap();
    assert!(host.contains("192.0.2.7".parse().unwrap()));
    assert!(!host.contains("192.0.2.8".parse().unwrap()));
    let all = Cidr::parse("0.0.0.0/0").unwrap();
    assert!(all.contains("255.255.255.255".parse().unwrap()));
    let v6 = Cidr::parse("2001:DB8:1234:5678::/64").unwrap();
    assert!(v6.contains("2001:db8:1234:5678:ffff::1".parse().unwrap()));
    assert!(!v6.contains("2001:db8:1234:5679::1".parse().unwrap()));
    assert!(!v6.contains("10.0.0.1".parse().unwrap()));
    assert!(
        Cidr::parse("::/0")
            .unwrap()
            .contains("::1".parse().unwrap())
    );
    for bad in [
        "10.0.0.0/33",
        "::/129",
        "10.0.0/8",
        "10.0.0.0/",
        "10.0.0.0/+8",
        "host",
        "10.0.0.0/8/8",
    ] {
        assert!(Cidr::parse(bad).is_none(), "{bad}");
    }
    assert_eq!(
        request_ip("::ffff:10.0.0.1"),
        Some("10.0.0.1".parse().unwrap())
    );
}

#[test]
fn case_insensitive_eq() {
    assert!(eq_ignore_case("ÄBC", "äbc"));
    assert!(!eq_ignore_case("abc", "abd"));
    assert!(!eq_ignore_case("abc", "ab"));
}
