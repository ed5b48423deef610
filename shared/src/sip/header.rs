//! Header names (long and compact forms, case-insensitive) and the ordered header list.

use std::fmt;

use super::scan::split_commas;

macro_rules! header_names {
    ($( $(#[$doc:meta])* $variant:ident = $long:literal $(, $compact:literal)? ;)*) => {
        /// A header name. Known headers have a variant (matched case-insensitively, compact forms
        /// included: `v` is Via); anything else is [`HeaderName::Other`], spelled as received and
        /// compared case-insensitively.
        #[derive(Debug, Clone, Eq)]
        #[non_exhaustive]
        pub enum HeaderName {
            $( $(#[$doc])* #[doc = concat!("`", $long, "`")] $variant, )*
            /// Any other header, spelled as received.
            Other(String),
        }

        impl HeaderName {
            /// Looks a name up (long or compact form, any case).
            pub fn parse(name: &str) -> HeaderName {
                if name.len() == 1 {
                    let c = name.as_bytes()[0].to_ascii_lowercase();
                    $( $( if c == $compact { return HeaderName::$variant; } )? )*
                }
                $( if name.eq_ignore_ascii_case($long) { return HeaderName::$variant; } )*
                HeaderName::Other(name.to_owned())
            }

            /// The canonical long form (or the name as received for [`HeaderName::Other`]).
            pub fn as_str(&self) -> &str {
                match self {
                    $( HeaderName::$variant => $long, )*
                    HeaderName::Other(s) => s,
                }
            }

            /// The canonical long form of a known header, `"Other"` for [`HeaderName::Other`].
            pub(crate) fn static_name(&self) -> &'static str {
                match self {
                    $( HeaderName::$variant => $long, )*
                    HeaderName::Other(_) => "Other",
                }
            }
        }
    };
}

header_names! {
    Via = "Via", b'v';
    From = "From", b'f';
    To = "To", b't';
    CallId = "Call-ID", b'i';
    CSeq = "CSeq";
    Contact = "Contact", b'm';
    Route = "Route";
    RecordRoute = "Record-Route";
    MaxForwards = "Max-Forwards";
    Authorization = "Authorization";
    ProxyAuthorization = "Proxy-Authorization";
    WwwAuthenticate = "WWW-Authenticate";
    ProxyAuthenticate = "Proxy-Authenticate";
    ContentType = "Content-Type", b'c';
    ContentLength = "Content-Length", b'l';
    ContentEncoding = "Content-Encoding", b'e';
    Expires = "Expires";
    Supported = "Supported", b'k';
    Require = "Require";
    ProxyRequire = "Proxy-Require";
    Unsupported = "Unsupported";
    Subject = "Subject", b's';
    Accept = "Accept";
    Allow = "Allow";
    Event = "Event", b'o';
    AllowEvents = "Allow-Events", b'u';
    ReferTo = "Refer-To", b'r';
    ReferredBy = "Referred-By", b'b';
    SessionExpires = "Session-Expires", b'x';
    Path = "Path";
    UserAgent = "User-Agent";
    Server = "Server";
    Date = "Date";
}

impl PartialEq for HeaderName {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (HeaderName::Other(a), HeaderName::Other(b)) => a.eq_ignore_ascii_case(b),
            (a, b) => std::mem::discriminant(a) == std::mem::discriminant(b),
        }
    }
}

impl fmt::Display for HeaderName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl From<&str> for HeaderName {
    fn from(s: &str) -> Self {
        HeaderName::parse(s)
    }
}

/// One header line: a name and its value, unfolded (each `CRLF WSP` run became one space) and
/// trimmed, otherwise exactly as received.
#[derive(Clone, PartialEq, Eq)]
pub struct Header {
    /// The header's name.
    pub name: HeaderName,
    /// The value text.
    pub value: String,
}

impl Header {
    /// A header from a name and a value (CR and LF in `value` are replaced by spaces).
    pub fn new(name: impl Into<HeaderName>, value: impl Into<String>) -> Self {
        let mut value = value.into();
        if value.contains(['\r', '\n']) {
            value = value.replace(['\r', '\n'], " ");
        }
        Header {
            name: name.into(),
            value,
        }
    }
}

impl fmt::Debug for Header {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Credentials never reach a log through Debug.
        let secret = matches!(
            self.name,
            HeaderName::Authorization | HeaderName::ProxyAuthorization
        );
        f.debug_struct("Header")
            .field("name", &self.name.as_str())
            .field("value", &if secret { "<redacted>" } else { &self.value })
            .finish()
    }
}

/// The headers of a message, in order. Repeated headers stay separate entries; use
/// [`Headers::values`] to read a comma-separated list across all of them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Headers(pub Vec<Header>);

impl Headers {
    /// Every value of headers named `name`, in order (one entry per header line).
    pub fn get_all<'a>(&'a self, name: &HeaderName) -> impl Iterator<Item = &'a str> + 'a {
        let name = name.clone();
        self.0
            .iter()
            .filter(move |h| h.name == name)
            .map(|h| h.value.as_str())
    }

    /// The first value of `name`.
    pub fn get(&self, name: &HeaderName) -> Option<&str> {
        self.get_all(name).next()
    }

    /// How many header lines are named `name`.
    pub fn count(&self, name: &HeaderName) -> usize {
        self.get_all(name).count()
    }

    /// The comma-separated elements of every `name` header, in order (quotes and `<...>`
    /// respected, empty elements skipped).
    pub fn values<'a>(&'a self, name: &HeaderName) -> Vec<&'a str> {
        self.get_all(name).flat_map(split_commas).collect()
    }

    /// Appends a header.
    pub fn push(&mut self, header: Header) {
        self.0.push(header);
    }

    /// Inserts a header at `index` (clamped to the end).
    pub fn insert(&mut self, index: usize, header: Header) {
        let index = index.min(self.0.len());
        self.0.insert(index, header);
    }

    /// Removes every `name` header; returns how many were removed.
    pub fn remove_all(&mut self, name: &HeaderName) -> usize {
        let before = self.0.len();
        self.0.retain(|h| &h.name != name);
        before - self.0.len()
    }

    /// Replaces every `name` header with one holding `value`, at the first one's position
    /// (or at the end).
    pub fn set(&mut self, name: HeaderName, value: impl Into<String>) {
        let pos = self.position(&name);
        self.remove_all(&name);
        let header = Header::new(name, value);
        match pos {
            Some(p) => self.insert(p, header),
            None => self.push(header),
        }
    }

    /// The index of the first `name` header.
    pub fn position(&self, name: &HeaderName) -> Option<usize> {
        self.0.iter().position(|h| &h.name == name)
    }

    /// Iterates over the headers in order.
    pub fn iter(&self) -> std::slice::Iter<'_, Header> {
        self.0.iter()
    }
}
