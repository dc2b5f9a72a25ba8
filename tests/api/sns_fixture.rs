//! The SNS fixture itself: its certificate comes over HTTPS from a server
//! only the test CA vouches for, its messages verify with the library's
//! `Verifier`, a tampered one does not, and its subscribe URL confirms.

use std::sync::atomic::Ordering;

use scalebot::sns::{SnsError, SnsMessage, Verifier};
use serde_json::json;

use crate::support::sns::SnsSigner;

const TOPIC: &str = "arn:aws:sns:us-east-1:123456789012:chatops-alarms";

fn client(signer: &SnsSigner) -> reqwest::Client {
    let ca = reqwest::Certificate::from_pem(signer.ca_pem.as_bytes()).expect("CA PEM");
    reqwest::Client::builder()
        .add_root_certificate(ca)
        .build()
        .expect("client")
}

fn parse(msg: &serde_json::Value) -> SnsMessage {
    SnsMessage::from_json(&serde_json::to_vec(msg).expect("JSON")).expect("an SNS message")
}

fn verifier(signer: &SnsSigner) -> Verifier {
    // The library matches extra hosts against the URL's host without its
    // port, hence `host_name` rather than `host` here.
    Verifier::new(vec![TOPIC.into()]).with_extra_hosts(vec![signer.host_name.clone()])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_notification_verifies_against_the_certificate_served_over_https() {
    let signer = SnsSigner::get();
    let cert_url = signer.cert_url_named("sns-fixture-notification");
    let mut msg = signer.notification(TOPIC, "m-1", Some("ALARM: x"), r#"{"AlarmName":"a"}"#);
    assert_eq!(msg["SigningCertURL"], json!(signer.cert_url));
    assert_eq!(msg["SignatureVersion"], json!("2"));
    msg["SigningCertURL"] = json!(cert_url);
    signer.sign(&mut msg);

    let before = signer.fetches.load(Ordering::SeqCst);
    let pem = client(signer)
        .get(&cert_url)
        .send()
        .await
        .expect("HTTPS fetch")
        .error_for_status()
        .expect("200")
        .bytes()
        .await
        .expect("body");
    assert_eq!(pem.as_ref(), signer.cert_pem.as_bytes());
    assert_eq!(signer.fetches_of(&cert_url), 1);
    assert!(signer.fetches.load(Ordering::SeqCst) > before);

    let v = verifier(signer);
    assert_eq!(v.verify(&parse(&msg), &pem), Ok(()));

    let mut tampered = msg.clone();
    tampered["Message"] = json!(r#"{"AlarmName":"b"}"#);
    assert_eq!(
        v.verify(&parse(&tampered), &pem),
        Err(SnsError::BadSignature)
    );
    signer.sign(&mut tampered);
    assert_eq!(v.verify(&parse(&tampered), &pem), Ok(()), "re-signed");

    let mut relabelled = msg.clone();
    relabelled["SignatureVersion"] = json!("1");
    signer.sign_raw(&mut relabelled);
    assert_eq!(
        v.verify(&parse(&relabelled), &pem),
        Err(SnsError::BadSignature)
    );

    // Nothing but the test CA vouches for the server.
    assert!(reqwest::Client::new().get(&cert_url).send().await.is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscription_confirmation_verifies_and_its_url_confirms() {
    let signer = SnsSigner::get();
    let token = format!("sns-fixture-{}", uuid::Uuid::new_v4());
    let msg = signer.subscription_confirmation(TOPIC, &token);
    let http = client(signer);
    let pem = http
        .get(&signer.cert_url)
        .send()
        .await
        .expect("HTTPS fetch")
        .bytes()
        .await
        .expect("body");
    let parsed = parse(&msg);
    assert_eq!(verifier(signer).verify(&parsed, &pem), Ok(()));

    let url = parsed.subscribe_url.expect("SubscribeURL");
    assert_eq!(
        scalebot::sns::check_subscribe_url(&url, std::slice::from_ref(&signer.host_name)),
        Ok(())
    );
    let resp = http.get(&url).send().await.expect("confirm");
    assert_eq!(resp.status(), 200);
    let body = resp.text().await.expect("body");
    assert!(body.contains("<ConfirmSubscriptionResponse"), "{body}");
    assert!(
        body.contains(&format!("<SubscriptionArn>{TOPIC}:")),
        "{body}"
    );
    assert!(signer.confirmed_tokens().contains(&token));
}
