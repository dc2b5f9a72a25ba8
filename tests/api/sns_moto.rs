//! moto's SNS publishing to the running bot over HTTP: a topic, an HTTP
//! subscription to the bot's `/sns`, a CloudWatch alarm published to it.
//! moto signs the delivery with a key of its own (SignatureVersion 2) and
//! serves the certificate at `https://sns.eu-central-1.amazonaws.com/…`; the
//! bot is told to reach that host at the test's HTTPS server
//! (`sns.cert_host_addresses`), which passes the request on to moto. So the
//! bot checks moto's real signature over moto's real wire format.

use scalebot::settings_file::SettingsFile;

use crate::sns::{alarm, sns_options};
use crate::support::app::{INCIDENTS, message_text, spawn_app};
use crate::support::moto;
use crate::support::sns::{MOTO_CERT_HOST, SnsSigner};

const MOTO_TOPIC_NAME: &str = "moto-alarms";

/// One call of the SNS query API; moto picks the service from the
/// credential scope, the signature itself it does not check.
async fn sns_call(params: &[(&str, &str)]) -> String {
    let resp = reqwest::Client::new()
        .post(format!("{}/", moto::moto_url()))
        .header(
            "authorization",
            format!(
                "AWS4-HMAC-SHA256 Credential=testing/20261128/{}/sns/aws4_request, SignedHeaders=host, Signature=0",
                moto::REGION
            ),
        )
        .form(&[&[("Version", "2010-03-31")], params].concat())
        .send()
        .await
        .expect("moto answers");
    let status = resp.status();
    let text = resp.text().await.unwrap_or_default();
    assert!(status.is_success(), "SNS {params:?}: {status} {text}");
    text
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_alarm_published_through_moto_sns_opens_an_incident() {
    let topic = format!(
        "arn:aws:sns:{}:123456789012:{MOTO_TOPIC_NAME}",
        moto::REGION
    );
    let signer = SnsSigner::get();
    signer.proxy_aws_certs_to(&moto::moto_url());
    let allowed = topic.clone();
    let app = spawn_app(sns_options(
        move |s: &mut SettingsFile| {
            s.sns.allowed_topics.push(allowed);
            s.sns
                .cert_host_addresses
                .insert(MOTO_CERT_HOST.into(), signer.addr);
        },
        None,
    ))
    .await;

    let created = sns_call(&[("Action", "CreateTopic"), ("Name", MOTO_TOPIC_NAME)]).await;
    assert!(created.contains(&topic), "{created}");
    sns_call(&[
        ("Action", "Subscribe"),
        ("TopicArn", &topic),
        ("Protocol", "http"),
        ("Endpoint", &format!("{}/sns", app.base)),
    ])
    .await;
    // moto delivers inside Publish, so the bot has answered when this returns.
    sns_call(&[
        ("Action", "Publish"),
        ("TopicArn", &topic),
        (
            "Message",
            &alarm("moto-published-alarm", "ALARM", "moto-fn"),
        ),
    ])
    .await;

    let root = app.wait_incident_post("ALARM: moto-published-alarm").await;
    assert!(
        message_text(&root).contains("L1 automated response"),
        "{root}"
    );
    assert_eq!(app.engine.store().sns_count().await.expect("count"), 1);
    let metrics = app.get("/metrics").await.text().await.expect("metrics");
    assert!(
        metrics.lines().any(|l| l.contains(r#"route="/sns""#)
            && l.contains(r#"outcome="ok""#)
            && l.ends_with(" 1")),
        "one verified delivery: {metrics}"
    );
    assert!(
        !app.slack
            .posts(INCIDENTS)
            .iter()
            .any(|p| message_text(p).contains("not a CloudWatch alarm")),
        "the alarm JSON survived moto's delivery"
    );
    app.stop().await;
}
