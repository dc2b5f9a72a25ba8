//! The ack path's CPU work: Slack signature verification and command
//! parsing against the shipped catalog.

use criterion::{Criterion, criterion_group, criterion_main};
use hmac::{Hmac, KeyInit, Mac};
use scalebot::catalog::{Catalog, Parsed};
use scalebot::chart::ChartCatalog;
use scalebot::engine::action_names;
use sha2::Sha256;
use slack_morphism::prelude::SlackSigningSecret;
use slack_morphism::signature_verifier::SlackEventSignatureVerifier;

fn bench(c: &mut Criterion) {
    let secret = "8f742231b10e8888abcd99yyyzzz85a5";
    let body = "token=x&team_id=T0001&channel_id=C1&user_id=U1&command=%2Fscale&text=throttles+persona-api&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2F1%2F2&trigger_id=1.2.3";
    let ts = chrono::Utc::now().timestamp().to_string();
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("key");
    mac.update(format!("v0:{ts}:{body}").as_bytes());
    let sig = format!("v0={}", hex::encode(mac.finalize().into_bytes()));
    let verifier = SlackEventSignatureVerifier::new(&SlackSigningSecret::new(secret.into()));
    c.bench_function("slack signature verify", |b| {
        b.iter(|| verifier.verify(&sig, body, &ts).expect("valid"))
    });

    let root = env!("CARGO_MANIFEST_DIR");
    let charts = ChartCatalog::load(format!("{root}/charts").as_ref()).expect("charts");
    let catalog = Catalog::load(
        format!("{root}/commands").as_ref(),
        &action_names(),
        &charts.names(),
    )
    .expect("catalog");
    c.bench_function("parse /scale throttles persona-api", |b| {
        b.iter(|| match catalog.parse("throttles persona-api") {
            Parsed::Run(inv) => inv,
            _ => panic!("parses"),
        })
    });
    c.bench_function("parse unknown verb with suggestion", |b| {
        b.iter(|| catalog.parse("throtles persona-api"))
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
