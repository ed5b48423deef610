//! Registration bindings of one address-of-record: RFC 3261 §10.3 REGISTER processing with the
//! RFC 5626 (SIP outbound) flow rules.
//!
//! # Design
//! Sans-IO and independent of the SIP parser: the SIP core fills a [`Register`] from a parsed,
//! authenticated REGISTER (Call-ID, CSeq, `Expires`, the Contact list with `expires`, `q`,
//! `+sip.instance`, `reg-id`, plus opaque `Path` and flow id), calls [`Bindings::apply`] with
//! the time, and answers 200 OK listing [`Bindings::live`] with
//! [`Binding::expires_in_s`], or the [`RegistrarError`]'s status. Time is `now_ms` milliseconds;
//! [`Bindings::poll_timeout`] says when to wake, [`Bindings::handle_timeout`] returns the bindings
//! that expired. `Bindings` is `serde`-serializable, for a Durable Object to persist it.
//!
//! ```
//! use shared::registrar::{Bindings, ContactInput, Contacts, Register, RegistrarConfig};
//!
//! let mut aor = Bindings::new(RegistrarConfig::default());
//! let register = Register {
//!     call_id: "c1".into(),
//!     cseq: 1,
//!     expires: Some(600),
//!     contacts: Contacts::List(vec![ContactInput::new("sip:x@df7jal23ls0d.invalid;transport=ws")]),
//!     path: vec![],
//!     flow: Some("ws-1".into()),
//! };
//! aor.apply(0, &register).unwrap();
//! assert_eq!(aor.poll_timeout(), Some(600_000));
//! assert_eq!(aor.handle_timeout(600_000).len(), 1);
//! ```

mod binding;
mod bindings;
mod error;

pub use binding::{Binding, ContactInput, Contacts, Register, Q};
pub use bindings::{BindingChange, Bindings, RegisterOutcome, RegistrarConfig};
pub use error::RegistrarError;
