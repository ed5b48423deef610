//! The SIP logic of one account at the edge: registrar (or registration relay) and
//! record-routing proxy between the account's browsers, the tenant's other accounts and the
//! tenant's upstream SIP server (RFC 3261 §10 and §16, RFC 7118, RFC 5626-style flows).
//!
//! # Design
//! - **One core per SIP account, sans-IO.** The Worker keeps one Durable Object per account
//!   (`sip:user@tenant_domain`) running an [`AccountCore`]. The shell feeds [`Event`]s with the
//!   time ([`AccountCore::handle`]), carries out every [`Output`] from
//!   [`AccountCore::poll_output`], persists [`Output::PersistBindings`], and sets an alarm at
//!   [`AccountCore::poll_timeout`] that calls [`AccountCore::handle_timeout`]. There is no IO,
//!   clock or randomness inside: branches, tags and nonces' random part come from a SplitMix64
//!   PRNG seeded with [`AccountConfig::seed`] (the shell draws it from a real random source
//!   each time it builds a core). Messages between account objects are [`SipMessage`]s
//!   (`Output::ToAccount` → `Event::FromAccount`); the shell serializes them as it likes.
//! - **Hops.** A message comes from, and goes to, one of three hops: a browser connection
//!   (`ConnId`, one RFC 5626 flow), another account object of the same tenant, or this
//!   account's upstream connection. Responses are never routed by reading Via: every request
//!   this core forwards gets our Via (`SIP/2.0/WSS {edge_host};branch=z9hG4bK…`, `TCP`/`TLS`
//!   towards the upstream) with a fresh branch, and the transaction table, keyed by that
//!   branch, remembers the hop it went to and the hop the request came from. A response whose
//!   top Via is not ours, whose branch is unknown, or that arrives from another hop than the
//!   branch went to, is dropped: a browser cannot inject responses into other transactions.
//! - **Registration.** [`RegistrationMode::Local`]: 401 with SHA-256 and MD5 challenges
//!   sharing a stateless nonce bound to the tenant ([`crate::auth::Verifier`]); verification
//!   against the stored HA1s; the auth module's mapping decides the answer (wrong password or
//!   unknown account → 403, expired nonce or replayed `nc` → 401 `stale=true`, foreign or bad
//!   nonce → fresh 401). An unknown account ([`AccountConfig::credentials`] `None`) gets the
//!   same 401 then 403 as a wrong password. Nonces issued before the core first ran are
//!   treated as stale, since the replay tracker of an evicted instance is gone. Bindings are
//!   keyed by `+sip.instance`/`reg-id` (else the contact URI), carry their flow (the
//!   connection), and go when it closes. [`RegistrationMode::Relay`]: the REGISTER goes to the
//!   upstream with our Via, `Path: <sip:{user}@{edge_host};lr;acct={user}>` and
//!   `Supported: path`; on its 2xx the bindings are mirrored here with the upstream's expiry
//!   so that its INVITEs (routed back by the Path) find the browser; losing the upstream
//!   drops them. Both emit [`Output::Registered`] on success. The To must be this account at
//!   the tenant domain (or edge host), From and Request-URI the tenant's: else 403.
//! - **Routing** (RFC 3261 §16.4-16.6). Route values naming this edge are recognised by host
//!   = `edge_host`; ours carry `acct={user}`: our own is popped, another account's sends the
//!   request to that account object (which pops it), a bare edge route (a preloaded
//!   `<sip:edge;lr>`) is popped, a foreign one goes to the upstream. Without Route: a
//!   Request-URI that is a contact of one of our browsers (a binding, or a Contact seen from a
//!   browser in a dialog) goes to that connection; an in-dialog request from a browser with
//!   nowhere else to go goes to the upstream (a dialog with an upstream UA that did not
//!   record-route), otherwise 481. Out of dialog from a browser: `*43` → echo; the account's
//!   own user → its other browsers; another user of the tenant domain → [`Output::Lookup`],
//!   then the account object or the upstream (404 without one); a foreign domain → the
//!   upstream; OPTIONS to the edge itself → 200 with Allow/Supported. Out of dialog from an
//!   account or the upstream: fork to every binding (480 if none). Dialog-creating requests
//!   (INVITE, SUBSCRIBE, REFER) get `Record-Route: <sip:{edge_host};transport=ws;lr;acct={user}>`
//!   from every account core they cross, so both ends' in-dialog requests come back through
//!   both account objects. Max-Forwards is decremented (483 at 0). A browser's out-of-dialog
//!   request must be From this account at the tenant (or `anonymous@anonymous.invalid`),
//!   else 403: no caller-ID spoofing towards other accounts or the upstream.
//! - **Proxy transactions** (RFC 3261 §16.7-16.10). One server side and its branches. INVITE
//!   gets 100 Trying at once. Provisionals (not 100) go back; every 2xx goes back, and the
//!   first cancels the other branches; a 6xx cancels the rest and wins; otherwise, once every
//!   branch has a final response, the best one goes back (6xx, else the lowest class, 401/407
//!   challenges merged, a 503 sent as 500). Non-2xx finals to INVITE are ACKed here, per
//!   branch (hop-by-hop), and the source's ACK for ours is absorbed. ACK for 2xx is forwarded
//!   statelessly along its Route. CANCEL is answered 200 at once (481 without a transaction)
//!   and forwarded to every pending branch; a branch that never answered counts as 487
//!   straight away, one that did has `cancel_timeout_ms` to send its 487. A CANCEL after a 2xx
//!   is answered 200 and does nothing more: nothing follows a 2xx but more 2xx.
//! - **Timers.** Timer C per INVITE branch (reset by provisionals; 5 s longer on a branch to
//!   another account, whose own Timer C decides first): the branch is cancelled and counts
//!   as 408 (so 408 goes back when all branches are done); non-INVITE branches time
//!   out as 408 after `non_invite_timeout_ms`; lookups, echo and media bridges unanswered
//!   after `pending_timeout_ms` give 503; finished transactions linger `linger_ms` (to absorb ACKs
//!   and forward late 2xx) and are then forgotten; bindings expire.
//! - **Flows fail.** [`Event::ConnectionClosed`] removes that connection's bindings (RFC 5626),
//!   counts branches to it as 480, and cancels what it had asked for. [`Event::UpstreamLost`]
//!   counts branches to the upstream as 503 and, in relay mode, drops the mirrored bindings
//!   (the browsers are expected to register again; the shell may close their sockets to
//!   prompt it).
//! - **Bounded memory.** Transactions are capped (`max_transactions`, beyond → 503 with
//!   Retry-After), as are bindings (the one closest to expiry makes room), remembered dialog
//!   contacts, echo calls and the auth replay tracker.
//! - **Echo (`*43`).** The INVITE's offer goes out in [`Output::Echo`]; on
//!   [`Event::EchoAnswer`] `Ok(sdp)` the core answers 200 with that SDP, a To-tag, our
//!   Record-Route and Contact `<sip:*43@{edge_host};transport=ws>`; `Err((status, reason))`
//!   answers that status. In the dialog: ACK absorbed, BYE answered 200 and
//!   [`Output::EchoEnded`], a new offer (re-INVITE/UPDATE with SDP) refused with 488.
//!   `EchoEnded` may be sent for a bridge still being allocated (the call was cancelled or its
//!   browser left) and again when its answer arrives: the shell treats it as idempotent.
//! - **Media bridge** (`bridge.rs`; [`AccountConfig::bridge_upstream_media`], default on).
//!   Browsers speak WebRTC and the upstream plain RTP, so a call between a browser and the
//!   upstream goes through a media node; the core rewrites the SDP both ways by asking the
//!   shell, which talks to the node (like echo). Calls between the tenant's accounts stay peer
//!   to peer, and `*43` is the echo flow above. Each ask carries an `id` from the core's counter
//!   and is answered by one event with that id; an answer with an unknown id is ignored.
//!   *Out* (a new INVITE from a browser that goes to the upstream, directly or after a
//!   lookup): [`Output::BridgeOffer`] `{id, call_id, browser_offer}` → [`Event::BridgeReady`]
//!   `{id, result: Ok(BridgeOffer {session, upstream_offer})}`: the INVITE goes upstream with
//!   `upstream_offer` as its body; `Err((status, reason))` answers the browser that status
//!   and nothing goes upstream. An upstream 18x or 2xx with SDP is held and
//!   [`Output::BridgeAnswer`] `{id, session, upstream_answer}` asked; on
//!   [`Event::BridgeAnswered`] `Ok(browser_answer)` it goes to the browser with that body.
//!   Responses arriving meanwhile queue behind it (order kept); the same upstream SDP again
//!   (the 2xx repeating the 183's answer) reuses the last rewrite without asking.
//!   *In* (a new INVITE from the upstream to the browsers, forked to every binding or sent to
//!   the one its Path/Request-URI names): [`Output::BridgeOfferFromUpstream`] `{id, call_id,
//!   upstream_offer}` → [`Event::BridgeReadyFromUpstream`] `{id, result:
//!   Ok(BridgeBrowserOffer {session, browser_offer})}` (a separate type so the field names say
//!   which way the SDP goes): the browsers get `browser_offer`; `Err` answers the upstream
//!   (a shell whose nodes cannot bridge this way answers 488 or 503). The first browser 2xx
//!   cancels the other branches and is held: [`Output::BridgeAnswerFromBrowser`] `{id,
//!   session, browser_answer}` → [`Event::BridgeAnsweredForUpstream`] `Ok(upstream_answer)`:
//!   the 2xx goes upstream with that body. A browser's SDP in an 18x is stripped; a later 2xx
//!   of another browser is ACKed and BYEd here.
//!   An INVITE without an offer is refused 488 (the node is offer-first); beyond
//!   `max_bridge_calls`, 503 with Retry-After.
//!   *Failures.* A failed answer ([`Event::BridgeAnswered`] or
//!   [`Event::BridgeAnsweredForUpstream`] `Err`), or none within `pending_timeout_ms` (503),
//!   answers the side that called with the status, CANCELs the pending branches, and ACKs and
//!   BYEs a held 2xx (the other side had answered). A CANCEL while the session is being
//!   allocated gets 487 at once; a session answered too late (cancelled, timed out, caller
//!   gone) is released as soon as it comes. Once a 2xx is held the call is decided: a CANCEL
//!   then only gets its 200. A 2xx arriving after the call failed is ACKed and BYEd here.
//!   *In the dialog* (matched by Call-ID and both tags): a browser re-INVITE or UPDATE with an
//!   offer (hold, resume, ICE restart) → [`Output::BridgeRenegotiate`] `{id, session,
//!   browser_offer}` → [`Event::BridgeRenegotiated`] `Ok(answer)`: answered here 200 with that
//!   answer and the upstream's Contact (the remote target does not change), its ACK absorbed;
//!   `Err`/timeout answers the status and the call goes on. When the offer changes the
//!   direction (hold: `sendonly`/`inactive`, resume: `sendrecv`; not an ICE restart alone), the
//!   core then re-INVITEs the upstream itself, as the browser: our last SDP towards it (the
//!   node's address, port and codecs), `o=` version plus one, the browser's direction. Its 2xx
//!   is ACKed here (its answer is not given to the node: the relay does not depend on the
//!   direction), a 491 is ACKed and the re-INVITE sent again 2.1-4 s later, any other failure
//!   or no answer in 32 s leaves the call as it is. A second re-offer before the first is
//!   answered gets 491; an offerless browser re-INVITE, 488.
//!   An upstream re-INVITE or UPDATE whose SDP equals its last one (`o=` aside: a session
//!   refresh), or that has none, is answered here at once with the SDP it already has from the
//!   node, unchanged. A real change (new address or port, codecs, hold) goes to the node,
//!   [`Output::BridgeUpstreamReoffer`] `{id, session, upstream_offer}` →
//!   [`Event::BridgeUpstreamReoffered`] `Ok(answer)`: answered 200 with it, its direction
//!   mirroring the offer's (sendonly → recvonly, inactive → inactive) and no more than the
//!   browser's own hold allows, `o=` ours with the version bumped; `Err` answers the status and
//!   the call goes on. When the upstream's direction changed, the browser then gets a
//!   re-INVITE of our own, as the upstream: our last SDP towards it (same ICE credentials and
//!   fingerprint, so its transport is unchanged), version bumped, the upstream's direction
//!   (`sendonly` for "held by the other side"); its 2xx is ACKed here. Either side's re-offer
//!   while our re-INVITE to it is under way gets 491. ACKs of re-INVITEs answered here are
//!   absorbed.
//!   *Release.* [`Output::BridgeRelease`] `{session}` exactly once per session: on BYE (either
//!   way, as it passes), on the non-2xx final that ends the call, on a failure above, and when
//!   a leg's flow goes ([`Event::ConnectionClosed`] of the call's browser: a BYE goes to the
//!   upstream as the browser; [`Event::UpstreamLost`]: a BYE goes to the browser as the
//!   upstream). Bridge state lives in memory like the rest of the dialog state: a core rebuilt
//!   after an eviction has forgotten it (its in-dialog requests are then proxied unchanged).
//! - **Media lost** (`media_check.rs`). A media node can die (or restart) mid-call; nothing in
//!   SIP tells either side, and a browser would only give up after its ICE restart fails. So
//!   while the core has allocated bridge sessions it asks the shell every
//!   `media_check_interval_ms` (5 s) to check each one ([`Output::CheckMedia`], answered by
//!   [`Event::MediaChecked`]); there is no timer and no check while it has none. A session the
//!   node no longer knows ([`MediaHealth::Gone`]) ends its call at once; a node unreachable
//!   `media_check_failures` (2) checks in a row ends it too, so one lost request does not. An
//!   established call gets a BYE each way (to the browser as the upstream, to the upstream as
//!   the browser); a call being set up is failed like any bridge failure (503 "Media Node
//!   Lost" to the caller, CANCEL to the pending branches, ACK and BYE for a held 2xx); a
//!   browser re-offer waiting on the node gets that 503. Each BYE and CANCEL carries
//!   `Reason: SIP;cause=503;text="Media Node Lost"` (RFC 3326), and the session gets its
//!   [`Output::BridgeRelease`]. So a dead node's calls end within 5-10 s plus the shell's
//!   check timeout. Why the core asks about sessions rather than trusting the fleet
//!   registry's view of nodes: the registry only drops a silent node after 15 s, and cannot
//!   tell that a node which restarted at once has forgotten its sessions.
//! - **Secrets.** HA1s live only in [`StoredCredentials`] (`Debug` redacted) and are never put
//!   in an output; Authorization headers are forwarded only in relay mode, to the upstream
//!   that asked for them.
//!
//! Not done here: the edge authenticating itself to an upstream that challenges it, and
//! bridging INVITEs without an SDP offer (late offer).
//!
//! Registration bindings (RFC 3261 §10.3 with RFC 5626 flows) live in this module
//! (`StoredBinding`), persisted by the shell.

mod bindings;
mod bridge;
mod config;
mod core;
mod echo;
mod io;
mod media_check;
mod register;
mod rng;
mod routing;
mod sdp_edit;
mod transaction;

pub use self::bindings::StoredBinding;
pub use self::config::{AccountConfig, Limits, RegistrationMode, StoredCredentials};
pub use self::core::AccountCore;
pub use self::io::{BridgeBrowserOffer, BridgeOffer, ConnId, Event, MediaHealth, Output};

#[cfg(doc)]
use crate::sip::SipMessage;
