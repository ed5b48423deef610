//! Known-answer tests: the worked examples of RFC 2617 §3.5 and RFC 7616 §3.9.1, answered with
//! the client side and checked with the server side. The `-sess` and `auth-int` values were
//! computed independently (Python `hashlib`) from the RFC 7616 inputs.

use shared::auth::{
    answer, ha1_hex, respond, Algorithm, Challenge, ClientRequest, Credentials, Qop, Secret,
};

const RFC2617_CHALLENGE: &str = "Digest realm=\"testrealm@host.com\", qop=\"auth,auth-int\", \
    nonce=\"dcd98b7102dd2f0e8b11d0f600bfb0c093\", opaque=\"5ccc069c403ebaf9f0171e9517f40e41\"";

const RFC7616_NONCE: &str = "7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v";
const RFC7616_CNONCE: &str = "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ";
const RFC7616_OPAQUE: &str = "FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS";

fn rfc7616_challenge(algorithm: &str) -> Challenge {
    Challenge::parse(&format!(
        "Digest realm=\"http-auth@example.org\", qop=\"auth, auth-int\", algorithm={algorithm}, \
         nonce=\"{RFC7616_NONCE}\", opaque=\"{RFC7616_OPAQUE}\""
    ))
    .unwrap()
}

#[test]
fn rfc2617_md5_example_response() {
    let challenge = Challenge::parse(RFC2617_CHALLENGE).unwrap();
    let header = respond(
        &challenge,
        "GET",
        "/dir/index.html",
        "Mufasa",
        "Circle Of Life",
        "0a4f113b",
        1,
    )
    .unwrap();
    let c = Credentials::parse(&header).unwrap();
    assert_eq!(c.response, "6629fae49393a05397450978507c4ef1");
    assert_eq!(c.qop, Some(Qop::Auth));
    assert_eq!(c.nc.unwrap().to_string(), "00000001");
    assert_eq!(
        c.opaque.as_deref(),
        Some("5ccc069c403ebaf9f0171e9517f40e41")
    );
}

#[test]
fn rfc2617_md5_example_credentials_verify_with_password_and_ha1() {
    let c = Credentials::parse(
        "Digest username=\"Mufasa\", realm=\"testrealm@host.com\", \
         nonce=\"dcd98b7102dd2f0e8b11d0f600bfb0c093\", uri=\"/dir/index.html\", qop=auth, \
         nc=00000001, cnonce=\"0a4f113b\", response=\"6629fae49393a05397450978507c4ef1\", \
         opaque=\"5ccc069c403ebaf9f0171e9517f40e41\"",
    )
    .unwrap();
    assert!(c
        .check(&Secret::Password("Circle Of Life".into()), "GET", b"")
        .unwrap());
    let ha1 = ha1_hex(
        Algorithm::Md5,
        "Mufasa",
        "testrealm@host.com",
        "Circle Of Life",
    );
    assert!(c
        .check(&Secret::Ha1(ha1.to_uppercase()), "GET", b"")
        .unwrap());
    assert!(!c
        .check(&Secret::Password("wrong".into()), "GET", b"")
        .unwrap());
}

#[test]
fn rfc7616_sha256_and_md5_examples() {
    for (algorithm, expected) in [
        ("MD5", "8ca523f5e9506fed4657c9700eebdbec"),
        (
            "SHA-256",
            "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1",
        ),
        ("MD5-sess", "e783283f46242139c486a698fec7211d"),
        (
            "SHA-256-sess",
            "2fd51b3a77ad75bad6afad6003e818d767133c46d9e2749e7f5232ae1ea3efd7",
        ),
    ] {
        let challenge = rfc7616_challenge(algorithm);
        let header = respond(
            &challenge,
            "GET",
            "/dir/index.html",
            "Mufasa",
            "Circle of Life",
            RFC7616_CNONCE,
            1,
        )
        .unwrap();
        let c = Credentials::parse(&header).unwrap();
        assert_eq!(c.response, expected, "{algorithm}");
        assert_eq!(c.algorithm.as_str(), algorithm);
        assert_eq!(c.opaque.as_deref(), Some(RFC7616_OPAQUE));
        // The server side agrees, from a stored HA1 as well as from the password.
        let ha1 = ha1_hex(
            c.algorithm,
            "Mufasa",
            "http-auth@example.org",
            "Circle of Life",
        );
        assert!(
            c.check(&Secret::Ha1(ha1), "GET", b"").unwrap(),
            "{algorithm}"
        );
    }
}

#[test]
fn rfc7616_inputs_with_auth_int_cover_the_body() {
    for (algorithm, expected) in [
        ("MD5", "8804a53d3640a40a4f73cea12c5ba451"),
        (
            "SHA-256",
            "8bdf6f15638e260831e905028de5450562816d093c9bfc5c13d3a46adcdde940",
        ),
    ] {
        let mut challenge = rfc7616_challenge(algorithm);
        challenge.qop = vec![Qop::AuthInt];
        let request = ClientRequest {
            method: "GET",
            uri: "/dir/index.html",
            body: b"",
        };
        let secret = Secret::Password("Circle of Life".into());
        let c = answer(&challenge, &request, "Mufasa", &secret, RFC7616_CNONCE, 1).unwrap();
        assert_eq!(c.response, expected, "{algorithm}");
        assert!(c.check(&secret, "GET", b"").unwrap());
        assert!(!c.check(&secret, "GET", b"v=0\r\n").unwrap());
    }
}
