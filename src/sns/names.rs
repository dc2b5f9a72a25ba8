//! The names SNS signs under: a message's certificate URL must be the SNS
//! endpoint of its topic's own region, and the certificate fetched from
//! there must be issued to SNS.
//!
//! AWS issues SNS's signing certificates to `sns.amazonaws.com` (as the
//! subject's common name and as a DNS subject alternative name; moto's
//! imitation does the same), whichever region serves them. A certificate
//! issued to the serving endpoint itself (`sns.eu-central-1.amazonaws.com`)
//! is taken too, and `sns.amazonaws.com.cn` for the China regions.

use x509_parser::certificate::X509Certificate;
use x509_parser::extensions::GeneralName;

/// The names SNS's signing certificates are issued to.
pub const SNS_SUBJECTS: &[&str] = &["sns.amazonaws.com", "sns.amazonaws.com.cn"];

/// The region of a topic ARN: `arn:aws:sns:eu-central-1:123456789012:alarms`
/// → `eu-central-1`; `None` for anything that is not an SNS topic ARN.
pub fn topic_region(topic_arn: &str) -> Option<&str> {
    let mut parts = topic_arn.splitn(6, ':');
    let fields: [Option<&str>; 6] = std::array::from_fn(|_| parts.next());
    match fields {
        [
            Some("arn"),
            Some(_),
            Some("sns"),
            Some(region),
            Some(_),
            Some(_),
        ] if !region.is_empty() => Some(region),
        _ => None,
    }
}

/// Whether `host` is the SNS endpoint of the topic's region
/// (`sns.<region>.amazonaws.com`, or `….amazonaws.com.cn` in China).
pub fn is_region_endpoint(host: &str, topic_arn: &str) -> bool {
    let Some(region) = topic_region(topic_arn) else {
        return false;
    };
    let host = host.to_ascii_lowercase();
    let region = region.to_ascii_lowercase();
    [".amazonaws.com", ".amazonaws.com.cn"]
        .iter()
        .any(|suffix| host == format!("sns.{region}{suffix}"))
}

/// The names a certificate is issued to: its subject's common names and
/// its DNS subject alternative names, lower-cased.
pub fn subject_names(cert: &X509Certificate<'_>) -> Vec<String> {
    let mut names: Vec<String> = cert
        .subject()
        .iter_common_name()
        .filter_map(|cn| cn.as_str().ok())
        .map(str::to_ascii_lowercase)
        .collect();
    if let Ok(Some(san)) = cert.subject_alternative_name() {
        for name in &san.value.general_names {
            if let GeneralName::DNSName(dns) = name {
                names.push(dns.to_ascii_lowercase());
            }
        }
    }
    names
}

/// Whether one of `names` is SNS: [`SNS_SUBJECTS`], or `endpoint` (the
/// certificate URL's host, when it is an SNS endpoint).
pub fn issued_to_sns(names: &[String], endpoint: Option<&str>) -> bool {
    names.iter().any(|name| {
        SNS_SUBJECTS.contains(&name.as_str())
            || endpoint.is_some_and(|e| e.eq_ignore_ascii_case(name))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOPIC: &str = "arn:aws:sns:eu-central-1:123456789012:chatops-alarms";

    #[test]
    fn the_region_comes_from_the_topic() {
        assert_eq!(topic_region(TOPIC), Some("eu-central-1"));
        assert_eq!(
            topic_region("arn:aws-cn:sns:cn-north-1:123456789012:t"),
            Some("cn-north-1")
        );
        for bad in [
            "",
            "arn:aws:sqs:eu-central-1:1:q",
            "arn:aws:sns::1:t",
            "arn:aws:sns:eu-central-1",
        ] {
            assert_eq!(topic_region(bad), None, "{bad}");
        }
    }

    #[test]
    fn only_the_topics_region_endpoint_matches() {
        assert!(is_region_endpoint("sns.eu-central-1.amazonaws.com", TOPIC));
        assert!(is_region_endpoint("SNS.EU-CENTRAL-1.AMAZONAWS.COM", TOPIC));
        assert!(!is_region_endpoint("sns.us-east-1.amazonaws.com", TOPIC));
        assert!(!is_region_endpoint(
            "sns.eu-central-1.amazonaws.com.evil",
            TOPIC
        ));
        assert!(is_region_endpoint(
            "sns.cn-north-1.amazonaws.com.cn",
            "arn:aws-cn:sns:cn-north-1:123456789012:t"
        ));
        assert!(!is_region_endpoint(
            "sns.eu-central-1.amazonaws.com",
            "not an arn"
        ));
    }

    #[test]
    fn sns_names() {
        let names = |n: &[&str]| n.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert!(issued_to_sns(&names(&["sns.amazonaws.com"]), None));
        assert!(issued_to_sns(
            &names(&["sns.eu-central-1.amazonaws.com"]),
            Some("sns.eu-central-1.amazonaws.com")
        ));
        assert!(!issued_to_sns(&names(&["evil.example", "localhost"]), None));
        assert!(!issued_to_sns(
            &names(&[]),
            Some("sns.eu-central-1.amazonaws.com")
        ));
    }
}
