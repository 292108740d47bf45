//! AWS query-protocol XML responses and errors.

use podiam_control::{AwsError, Protocol};

/// The STS namespace.
pub const STS_NS: &str = "https://sts.amazonaws.com/doc/2011-06-15/";
/// The IAM namespace.
pub const IAM_NS: &str = "https://iam.amazonaws.com/doc/2010-05-08/";

/// Escape text for XML element content and attribute values. Characters XML 1.0 cannot carry
/// at all (C0 controls other than tab, newline and carriage return, U+FFFE, U+FFFF) become
/// U+FFFD, so no stored string can make a response unparseable for every client.
pub fn escape(s: &str, out: &mut String) {
    // Runs of ordinary text are copied whole; only the bytes below stand for a replacement. Every
    // cut is at an ASCII byte or at the lead byte of U+FFFE/U+FFFF, so each run is whole UTF-8.
    // The scan for the next byte to look at goes through a table: one load and one test per
    // byte of text that needs nothing (credentials are long and need nothing).
    let bytes = s.as_bytes();
    out.reserve(bytes.len());
    let mut run = 0;
    let mut i = 0;
    while let Some(off) = bytes.get(i..).and_then(|rest| {
        rest.iter()
            .position(|&b| LOOK.get(usize::from(b)) != Some(&false))
    }) {
        i += off;
        let Some(&b) = bytes.get(i) else { break };
        let (replacement, len) = match b {
            b'&' => ("&amp;", 1),
            b'<' => ("&lt;", 1),
            b'>' => ("&gt;", 1),
            b'"' => ("&quot;", 1),
            b'\'' => ("&apos;", 1),
            b'\r' => ("&#xD;", 1),
            0..=0x1f if b != b'\t' && b != b'\n' => ("\u{fffd}", 1),
            // U+FFFE and U+FFFF are EF BF BE and EF BF BF.
            0xef if matches!(bytes.get(i + 1..i + 3), Some([0xbf, 0xbe | 0xbf])) => ("\u{fffd}", 3),
            _ => {
                i += 1;
                continue;
            }
        };
        out.push_str(s.get(run..i).unwrap_or_default());
        out.push_str(replacement);
        i += len;
        run = i;
    }
    out.push_str(s.get(run..).unwrap_or_default());
}

/// The bytes [`escape`] must look at: markup characters, C0 controls (tab and newline are kept,
/// but looking at them costs nothing in practice), and 0xEF, the lead byte of U+FFFE/U+FFFF.
#[expect(
    clippy::indexing_slicing,
    reason = "constant evaluation: an index out of bounds fails the build"
)]
const LOOK: [bool; 256] = {
    let mut t = [false; 256];
    let mut b = 0;
    while b < 0x20 {
        t[b] = true;
        b += 1;
    }
    t[b'&' as usize] = true;
    t[b'<' as usize] = true;
    t[b'>' as usize] = true;
    t[b'"' as usize] = true;
    t[b'\'' as usize] = true;
    t[0xef] = true;
    t
};

#[cfg(test)]
mod escape_tests {
    #[test]
    fn characters_xml_cannot_carry_are_replaced() {
        let mut out = String::new();
        super::escape("a\u{1}b\u{0}\tc\nd\re<&\u{fffe}", &mut out);
        assert_eq!(out, "a\u{fffd}b\u{fffd}\tc\nd&#xD;e&lt;&amp;\u{fffd}");
    }

    #[test]
    fn runs_between_replacements_are_copied_whole() {
        for (input, want) in [
            ("", ""),
            ("plain", "plain"),
            ("é\u{fffd}\u{fffe}x\u{ffff}", "é\u{fffd}\u{fffd}x\u{fffd}"),
            ("\u{effe}\u{fbff}'\"", "\u{effe}\u{fbff}&apos;&quot;"),
            ("<a>&</a>", "&lt;a&gt;&amp;&lt;/a&gt;"),
            ("tail\u{1f}", "tail\u{fffd}"),
            ("日本\u{7}語", "日本\u{fffd}語"),
        ] {
            let mut out = String::from(">");
            super::escape(input, &mut out);
            assert_eq!(out, format!(">{want}"), "{input:?}");
        }
    }

    /// The rule, one character at a time: what `escape` must agree with on every input.
    fn per_char(s: &str) -> String {
        let mut out = String::new();
        for c in s.chars() {
            match c {
                '&' => out.push_str("&amp;"),
                '<' => out.push_str("&lt;"),
                '>' => out.push_str("&gt;"),
                '"' => out.push_str("&quot;"),
                '\'' => out.push_str("&apos;"),
                '\r' => out.push_str("&#xD;"),
                '\t' | '\n' => out.push(c),
                '\u{0}'..='\u{1f}' | '\u{fffe}' | '\u{ffff}' => out.push('\u{fffd}'),
                c => out.push(c),
            }
        }
        out
    }

    #[test]
    fn agrees_with_the_per_character_rule_on_every_short_string() {
        let alphabet = [
            'a',
            '&',
            '<',
            '>',
            '"',
            '\'',
            '\t',
            '\n',
            '\r',
            '\u{0}',
            '\u{1f}',
            ' ',
            'é',
            '\u{fffd}',
            '\u{fffe}',
            '\u{ffff}',
            '\u{effe}',
            '\u{fbbf}',
            '\u{10000}',
        ];
        let n = alphabet.len();
        for i in 0..n * n * n {
            let s: String = [i % n, (i / n) % n, i / (n * n)]
                .iter()
                .filter_map(|k| alphabet.get(*k))
                .collect();
            let mut out = String::new();
            super::escape(&s, &mut out);
            assert_eq!(out, per_char(&s), "{s:?}");
        }
    }
}

/// A response under construction: `<OpResponse xmlns><OpResult>...`.
#[derive(Debug)]
pub struct Response {
    buf: String,
    action: String,
}

impl Response {
    /// Start the response of `action` in namespace `ns`.
    pub fn new(action: &str, ns: &str) -> Self {
        Self::with_capacity(action, ns, 1024)
    }

    /// [`Response::new`] with room for `capacity` bytes, for answers known to be long (session
    /// credentials), so the buffer is not regrown and copied while it is written.
    pub fn with_capacity(action: &str, ns: &str, capacity: usize) -> Self {
        let mut buf = String::with_capacity(capacity);
        buf.push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<");
        buf.push_str(action);
        buf.push_str("Response xmlns=\"");
        buf.push_str(ns);
        buf.push_str("\"><");
        buf.push_str(action);
        buf.push_str("Result>");
        Self {
            buf,
            action: action.to_owned(),
        }
    }

    /// `<tag>`.
    pub fn open(&mut self, tag: &str) -> &mut Self {
        self.buf.push('<');
        self.buf.push_str(tag);
        self.buf.push('>');
        self
    }

    /// `</tag>`.
    pub fn close(&mut self, tag: &str) -> &mut Self {
        self.buf.push_str("</");
        self.buf.push_str(tag);
        self.buf.push('>');
        self
    }

    /// `<tag>text</tag>`.
    pub fn leaf(&mut self, tag: &str, text: &str) -> &mut Self {
        self.open(tag);
        escape(text, &mut self.buf);
        self.close(tag)
    }

    /// `<tag>text</tag>` when present.
    pub fn opt(&mut self, tag: &str, text: Option<&str>) -> &mut Self {
        if let Some(t) = text {
            self.leaf(tag, t);
        }
        self
    }

    /// `<tag><member>..</member>...</tag>` of strings.
    pub fn members(&mut self, tag: &str, items: &[String]) -> &mut Self {
        self.open(tag);
        for i in items {
            self.leaf("member", i);
        }
        self.close(tag)
    }

    /// Close the result and add the request id.
    pub fn finish(mut self, request_id: &str) -> String {
        let action = std::mem::take(&mut self.action);
        self.buf.push_str("</");
        self.buf.push_str(&action);
        self.buf.push_str("Result><ResponseMetadata><RequestId>");
        escape(request_id, &mut self.buf);
        self.buf.push_str("</RequestId></ResponseMetadata></");
        self.buf.push_str(&action);
        self.buf.push_str("Response>");
        self.buf
    }
}

/// `<ErrorResponse>` of an error, in the query protocol's names.
pub fn error(e: &AwsError, ns: &str, request_id: &str) -> String {
    let wire = e.wire(Protocol::Query);
    let mut s = String::with_capacity(256);
    s.push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<ErrorResponse xmlns=\"");
    s.push_str(ns);
    s.push_str("\"><Error><Type>");
    s.push_str(if wire.is_sender() {
        "Sender"
    } else {
        "Receiver"
    });
    s.push_str("</Type><Code>");
    escape(wire.name, &mut s);
    s.push_str("</Code><Message>");
    escape(&e.message, &mut s);
    s.push_str("</Message></Error><RequestId>");
    escape(request_id, &mut s);
    s.push_str("</RequestId></ErrorResponse>");
    s
}

/// URL-encode a policy document as IAM returns it (RFC 3986 unreserved characters kept).
pub fn url_encode_policy(doc: &str) -> String {
    use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
    const SET: &AsciiSet = &NON_ALPHANUMERIC
        .remove(b'-')
        .remove(b'_')
        .remove(b'.')
        .remove(b'~');
    utf8_percent_encode(doc, SET).to_string()
}

/// `YYYY-MM-DDTHH:MM:SSZ`.
pub fn timestamp(unix: i64) -> String {
    podiam_control::auth::iso8601(unix)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn response_and_error_shapes() {
        let mut r = Response::new("GetCallerIdentity", STS_NS);
        r.leaf("Arn", "arn:aws:iam::1:root").leaf("UserId", "a<b");
        let xml = r.finish("rid");
        assert_eq!(
            xml,
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<GetCallerIdentityResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\"><GetCallerIdentityResult><Arn>arn:aws:iam::1:root</Arn><UserId>a&lt;b</UserId></GetCallerIdentityResult><ResponseMetadata><RequestId>rid</RequestId></ResponseMetadata></GetCallerIdentityResponse>"
        );
        let e = error(&AwsError::no_such_entity("role \"x\" & y"), IAM_NS, "r1");
        assert_eq!(
            e,
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<ErrorResponse xmlns=\"https://iam.amazonaws.com/doc/2010-05-08/\"><Error><Type>Sender</Type><Code>NoSuchEntity</Code><Message>role &quot;x&quot; &amp; y</Message></Error><RequestId>r1</RequestId></ErrorResponse>"
        );
        assert!(error(&AwsError::service_failure(), IAM_NS, "r").contains("<Type>Receiver</Type>"));
    }

    #[test]
    fn policy_url_encoding() {
        assert_eq!(
            url_encode_policy("{\"a\": \"b/c\"}"),
            "%7B%22a%22%3A%20%22b%2Fc%22%7D"
        );
    }
}
