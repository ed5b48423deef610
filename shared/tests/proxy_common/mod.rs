//! Test harness for the account cores: cores wired together on virtual time, JsSIP-shaped
//! browsers, and an upstream inbox.
#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet};

use shared::auth::{respond, Challenge};
use shared::proxy::{
    AccountConfig, AccountCore, ConnId, Event, Output, RegistrationMode, StoredCredentials,
};
use shared::sip::{Header, HeaderName, Method, SipMessage};

pub const TENANT: &str = "localhost";
pub const EDGE: &str = "127.0.0.1";
pub const T0: u64 = 1_700_000_000_000;

pub const SDP_OFFER: &str = "v=0\r\no=- 4611731400430051336 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n\
a=group:BUNDLE 0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111 0\r\nc=IN IP4 0.0.0.0\r\na=mid:0\r\n\
a=sendrecv\r\na=rtpmap:111 opus/48000/2\r\na=rtpmap:0 PCMU/8000\r\n";
pub const SDP_ANSWER: &str =
    "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\n\
c=IN IP4 0.0.0.0\r\na=mid:0\r\na=sendrecv\r\na=rtpmap:111 opus/48000/2\r\n";

pub fn config(user: &str, mode: RegistrationMode, has_upstream: bool) -> AccountConfig {
    AccountConfig {
        tenant_domain: TENANT.into(),
        user: user.into(),
        edge_host: EDGE.into(),
        registration: mode,
        has_upstream,
        credentials: Some(StoredCredentials::from_password(
            user,
            TENANT,
            &format!("demo-{user}"),
        )),
        nonce_secret: b"0123456789abcdef0123456789abcdef".to_vec(),
        seed: user
            .bytes()
            .fold(7u64, |a, b| a.wrapping_mul(31).wrapping_add(u64::from(b))),
        ..Default::default()
    }
}

/// `cfg` with the SDP passed through unchanged between browsers and the upstream (no media
/// bridge).
pub fn passthrough(mut cfg: AccountConfig) -> AccountConfig {
    cfg.bridge_upstream_media = false;
    cfg
}

pub fn parse(text: &str) -> SipMessage {
    SipMessage::parse(
        text.replace('\n', "\r\n")
            .replace("\r\r\n", "\r\n")
            .as_bytes(),
    )
    .expect("test message parses")
}

/// The status codes of `responses`, in order.
pub fn statuses(responses: &[SipMessage]) -> Vec<u16> {
    responses.iter().map(status).collect()
}

/// Account 1001 on its own (local registration, with an upstream), its browser registered on
/// connection `wsA`: where the media bridge scenarios start.
pub fn one_registered_account_with_upstream() -> (Net, Browser) {
    let mut net = Net::new(vec![config("1001", RegistrationMode::Local, true)]);
    let mut a = Browser::new("1001", "wsA");
    net.register(&mut a);
    (net, a)
}

pub fn status(m: &SipMessage) -> u16 {
    m.status().expect("a response")
}

pub fn method(m: &SipMessage) -> Method {
    m.method().cloned().expect("a request")
}

pub fn header<'a>(m: &'a SipMessage, name: &str) -> Vec<&'a str> {
    m.headers.get_all(&HeaderName::parse(name)).collect()
}

/// A JsSIP-like browser: one WebSocket connection of one account.
#[derive(Debug, Clone)]
pub struct Browser {
    pub user: String,
    pub conn: ConnId,
    pub host: String,
    pub contact_user: String,
    pub instance: String,
    counter: u64,
}

impl Browser {
    pub fn new(user: &str, conn: &str) -> Self {
        Browser {
            user: user.into(),
            conn: conn.into(),
            host: format!("{conn}.invalid"),
            contact_user: format!("c{conn}"),
            instance: format!("00000000-0000-4000-8000-{:0>12}", conn),
            counter: 0,
        }
    }

    pub fn next(&mut self) -> u64 {
        self.counter += 1;
        self.counter
    }

    pub fn branch(&mut self) -> String {
        let n = self.next();
        format!("z9hG4bK{}{n}", self.conn)
    }

    pub fn contact_uri(&self) -> String {
        format!("sip:{}@{};transport=ws", self.contact_user, self.host)
    }

    pub fn via(&mut self) -> String {
        let b = self.branch();
        format!("SIP/2.0/WSS {};branch={b}", self.host)
    }

    /// A REGISTER as JsSIP sends it; `auth` is an Authorization header value.
    pub fn register(&mut self, cseq: u32, expires: u32, auth: Option<&str>) -> SipMessage {
        let via = self.via();
        let mut text = format!(
            "REGISTER sip:{TENANT} SIP/2.0\n\
Via: {via}\n\
Max-Forwards: 69\n\
To: <sip:{u}@{TENANT}>\n\
From: <sip:{u}@{TENANT}>;tag=reg{c}\n\
Call-ID: reg-{c}\n\
CSeq: {cseq} REGISTER\n\
Contact: <{contact}>;+sip.ice;reg-id=1;+sip.instance=\"<urn:uuid:{inst}>\";expires={expires}\n\
Expires: {expires}\n\
Allow: INVITE,ACK,CANCEL,BYE,UPDATE,MESSAGE,OPTIONS,REFER,INFO,NOTIFY\n\
Supported: path,gruu,outbound\n\
User-Agent: JsSIP 3.10.1\n",
            u = self.user,
            c = self.conn,
            contact = self.contact_uri(),
            inst = self.instance,
        );
        if let Some(a) = auth {
            text.push_str(&format!("Authorization: {a}\n"));
        }
        text.push_str("Content-Length: 0\n\n");
        parse(&text)
    }

    /// An INVITE to `target` (a user of the tenant or a full URI) with an SDP offer.
    pub fn invite(&mut self, target: &str, call_id: &str) -> SipMessage {
        let uri = if target.starts_with("sip:") {
            target.to_owned()
        } else {
            format!("sip:{target}@{TENANT}")
        };
        let via = self.via();
        parse(&format!(
            "INVITE {uri} SIP/2.0\n\
Via: {via}\n\
Max-Forwards: 69\n\
To: <{uri}>\n\
From: \"{u}\" <sip:{u}@{TENANT}>;tag=from{c}\n\
Call-ID: {call_id}\n\
CSeq: 8237 INVITE\n\
Contact: <{contact};ob>\n\
Content-Type: application/sdp\n\
Session-Expires: 90\n\
Allow: INVITE,ACK,CANCEL,BYE,UPDATE,MESSAGE,OPTIONS,REFER,INFO,NOTIFY\n\
Supported: timer,ice,replaces,outbound\n\
User-Agent: JsSIP 3.10.1\n\
Content-Length: {len}\n\n{SDP_OFFER}",
            u = self.user,
            c = self.conn,
            contact = self.contact_uri(),
            len = SDP_OFFER.len(),
        ))
    }

    /// The CANCEL of an INVITE this browser sent (RFC 3261 §9.1).
    pub fn cancel(&self, invite: &SipMessage) -> SipMessage {
        let mut m = SipMessage::new_request(Method::CANCEL, invite.request_uri().unwrap().clone());
        for h in invite.headers.iter() {
            match h.name {
                HeaderName::Via
                | HeaderName::From
                | HeaderName::To
                | HeaderName::CallId
                | HeaderName::Route
                | HeaderName::MaxForwards => m.headers.push(h.clone()),
                HeaderName::CSeq => m.headers.push(Header::new(
                    HeaderName::CSeq,
                    format!("{} CANCEL", invite.cseq().unwrap().seq),
                )),
                _ => {}
            }
        }
        m.headers.push(Header::new(HeaderName::ContentLength, "0"));
        m
    }

    /// This browser's response to a request it received (UAS side): Via, From, To (+tag),
    /// Call-ID, CSeq, Record-Route copied, Contact added for dialog responses.
    pub fn respond(&self, req: &SipMessage, status: u16, reason: &str) -> SipMessage {
        let tag = format!("to{}", self.conn);
        let mut r = req.response_to(status, reason, Some(&tag)).unwrap();
        if status > 100 && matches!(req.method(), Some(Method::Invite | Method::Subscribe)) {
            let pos = r.headers.position(&HeaderName::ContentLength).unwrap();
            let mut extra: Vec<Header> = req
                .headers
                .iter()
                .filter(|h| h.name == HeaderName::RecordRoute)
                .cloned()
                .collect();
            extra.push(Header::new(
                HeaderName::Contact,
                format!("<{}>", self.contact_uri()),
            ));
            for (i, h) in extra.into_iter().enumerate() {
                r.headers.insert(pos + i, h);
            }
            if (200..300).contains(&status) && req.method() == Some(&Method::INVITE) {
                r.set_body(Some("application/sdp"), SDP_ANSWER.as_bytes().to_vec());
            }
        }
        r
    }
}

/// An established dialog as one browser sees it (RFC 3261 §12.1).
#[derive(Debug, Clone)]
pub struct Dialog {
    pub call_id: String,
    pub local: String,
    pub remote: String,
    pub remote_target: String,
    pub route_set: Vec<String>,
    pub cseq: u32,
}

fn split_routes(m: &SipMessage) -> Vec<String> {
    m.record_routes()
        .unwrap()
        .iter()
        .map(|r| r.to_string())
        .collect()
}

impl Dialog {
    /// The caller's dialog from the INVITE it sent and the 2xx it got.
    pub fn uac(invite: &SipMessage, ok: &SipMessage) -> Self {
        let mut route_set = split_routes(ok);
        route_set.reverse();
        Dialog {
            call_id: invite.call_id().unwrap().into(),
            local: invite.headers.get(&HeaderName::From).unwrap().into(),
            remote: ok.headers.get(&HeaderName::To).unwrap().into(),
            remote_target: ok.contacts_uri(),
            route_set,
            cseq: invite.cseq().unwrap().seq,
        }
    }

    /// The callee's dialog from the INVITE it received and the 2xx it sent.
    pub fn uas(invite: &SipMessage, ok: &SipMessage) -> Self {
        Dialog {
            call_id: invite.call_id().unwrap().into(),
            local: ok.headers.get(&HeaderName::To).unwrap().into(),
            remote: invite.headers.get(&HeaderName::From).unwrap().into(),
            remote_target: invite.contacts_uri(),
            route_set: split_routes(invite),
            cseq: 5000,
        }
    }

    /// An in-dialog request (`cseq` None = next number; ACK uses the INVITE's).
    pub fn request(&mut self, b: &mut Browser, m: Method, body: Option<&str>) -> SipMessage {
        let seq = if m == Method::ACK {
            self.cseq
        } else {
            self.cseq += 1;
            self.cseq
        };
        let via = b.via();
        let mut text = format!(
            "{m} {target} SIP/2.0\nVia: {via}\nMax-Forwards: 69\n",
            target = self.remote_target
        );
        if !self.route_set.is_empty() {
            text.push_str(&format!("Route: {}\n", self.route_set.join(", ")));
        }
        text.push_str(&format!(
            "To: {}\nFrom: {}\nCall-ID: {}\nCSeq: {seq} {m}\nContact: <{}>\n",
            self.remote,
            self.local,
            self.call_id,
            b.contact_uri()
        ));
        match body {
            Some(sdp) => text.push_str(&format!(
                "Content-Type: application/sdp\nContent-Length: {}\n\n{sdp}",
                sdp.len()
            )),
            None => text.push_str("Content-Length: 0\n\n"),
        }
        parse(&text)
    }
}

pub trait ContactUri {
    fn contacts_uri(&self) -> String;
}

impl ContactUri for SipMessage {
    fn contacts_uri(&self) -> String {
        match self.contacts().unwrap() {
            shared::sip::Contacts::List(l) => l[0].uri.to_string(),
            shared::sip::Contacts::Any => panic!("Contact: *"),
        }
    }
}

/// Several account cores of one tenant wired together, with browser and upstream inboxes.
#[derive(Debug, Default)]
pub struct Net {
    pub now: u64,
    pub cores: BTreeMap<String, AccountCore>,
    /// Users the Lookup answers "is an account" for.
    pub accounts: BTreeSet<String>,
    /// Messages delivered to each browser connection, in order.
    pub browsers: BTreeMap<ConnId, Vec<SipMessage>>,
    /// Messages sent to the upstream, per account.
    pub upstream: BTreeMap<String, Vec<SipMessage>>,
    /// Every other output, per account.
    pub other: BTreeMap<String, Vec<Output>>,
    /// Answer Lookups automatically.
    pub manual_lookups: bool,
}

impl Net {
    pub fn new(cores: Vec<AccountConfig>) -> Self {
        let mut net = Net {
            now: T0,
            ..Default::default()
        };
        for c in cores {
            net.accounts.insert(c.user.clone());
            net.cores.insert(c.user.clone(), AccountCore::new(c));
        }
        net
    }

    pub fn core(&mut self, user: &str) -> &mut AccountCore {
        self.cores.get_mut(user).expect("core")
    }

    pub fn event(&mut self, user: &str, ev: Event) {
        let now = self.now;
        self.core(user).handle(now, ev);
        self.run();
    }

    pub fn browser_sends(&mut self, b: &Browser, msg: SipMessage) {
        self.event(
            &b.user.clone(),
            Event::FromBrowser {
                conn: b.conn.clone(),
                msg,
            },
        );
    }

    pub fn upstream_sends(&mut self, user: &str, msg: SipMessage) {
        self.event(user, Event::FromUpstream { msg });
    }

    /// Advances virtual time to `t`, firing every core's timers due on the way.
    pub fn advance_to(&mut self, t: u64) {
        loop {
            let next = self
                .cores
                .values()
                .filter_map(|c| c.poll_timeout())
                .filter(|&x| x <= t)
                .min();
            let Some(next) = next else { break };
            self.now = self.now.max(next);
            let now = self.now;
            for c in self.cores.values_mut() {
                if c.poll_timeout().is_some_and(|x| x <= now) {
                    c.handle_timeout(now);
                }
            }
            self.run();
        }
        self.now = t;
    }

    pub fn advance(&mut self, ms: u64) {
        let t = self.now + ms;
        self.advance_to(t);
    }

    /// Delivers outputs until every core is quiet.
    pub fn run(&mut self) {
        loop {
            let mut moved = false;
            let users: Vec<String> = self.cores.keys().cloned().collect();
            for user in users {
                while let Some(out) = self.core(&user).poll_output() {
                    moved = true;
                    let now = self.now;
                    match out {
                        Output::ToBrowser { conn, msg } => {
                            // Over the wire and back: the message must serialize and reparse.
                            let msg = SipMessage::parse(&msg.to_bytes()).expect("wire form parses");
                            self.browsers.entry(conn).or_default().push(msg);
                        }
                        Output::ToAccount { user: to, msg } => {
                            let msg = SipMessage::parse(&msg.to_bytes()).expect("wire form parses");
                            if let Some(core) = self.cores.get_mut(&to) {
                                core.handle(
                                    now,
                                    Event::FromAccount {
                                        user: user.clone(),
                                        msg,
                                    },
                                );
                            }
                        }
                        Output::ToUpstream { msg } => {
                            let msg = SipMessage::parse(&msg.to_bytes()).expect("wire form parses");
                            self.upstream.entry(user.clone()).or_default().push(msg);
                        }
                        Output::Lookup { id, user: who } if !self.manual_lookups => {
                            let is_account = self.accounts.contains(&who);
                            self.core(&user)
                                .handle(now, Event::LookupResult { id, is_account });
                        }
                        other => self.other.entry(user.clone()).or_default().push(other),
                    }
                }
            }
            if !moved {
                break;
            }
        }
    }

    /// Takes what a browser received so far.
    pub fn take(&mut self, conn: &str) -> Vec<SipMessage> {
        self.browsers.remove(conn).unwrap_or_default()
    }

    /// Takes what account `user` sent to the upstream so far.
    pub fn take_upstream(&mut self, user: &str) -> Vec<SipMessage> {
        self.upstream.remove(user).unwrap_or_default()
    }

    /// Takes the other outputs of account `user`.
    pub fn take_other(&mut self, user: &str) -> Vec<Output> {
        self.other.remove(user).unwrap_or_default()
    }

    /// Registers `b` with digest auth (challenge, answer) and clears what that produced.
    pub fn register(&mut self, b: &mut Browser) {
        let first = b.register(1, 600, None);
        self.browser_sends(b, first);
        let got = self.take(&b.conn);
        let ch = first_challenge(&got[0]);
        let auth = answer(&ch, &b.user, &format!("demo-{}", b.user), 1);
        let second = b.register(2, 600, Some(&auth));
        self.browser_sends(b, second);
        let got = self.take(&b.conn);
        assert_eq!(status(&got[0]), 200, "registration of {}", b.conn);
        self.take_other(&b.user.clone());
    }
}

/// The first (SHA-256) challenge of a 401.
pub fn first_challenge(resp: &SipMessage) -> Challenge {
    assert_eq!(status(resp), 401);
    let values = header(resp, "WWW-Authenticate");
    Challenge::parse(values[0]).unwrap()
}

/// A browser's Authorization for a REGISTER answering `ch`.
pub fn answer(ch: &Challenge, user: &str, password: &str, nc: u32) -> String {
    respond(
        ch,
        "REGISTER",
        &format!("sip:{TENANT}"),
        user,
        password,
        "cn0nce",
        nc,
    )
    .unwrap()
}

/// The only message in `v`, asserting there is exactly one.
pub fn one(v: Vec<SipMessage>) -> SipMessage {
    assert_eq!(v.len(), 1, "expected one message, got {v:#?}");
    v.into_iter().next().unwrap()
}
