//! Kubernetes validating admission (SPECS §8): reading an `AdmissionReview` v1, finding every
//! image of the pod spec it carries, and writing the answer the API server shows in kubectl.

use custody_core::digest::Sha256Digest;
use custody_policy::Verdict;
use std::borrow::Cow;

use serde::{Deserialize, Serialize};

/// The `apiVersion` custody answers (and requires).
pub const REVIEW_API_VERSION: &str = "admission.k8s.io/v1";
/// Longest `status.message` written; kubectl prints it whole, so keep it readable.
const MAX_MESSAGE: usize = 4_000;
/// Longest warning; the API server may truncate past 256.
const MAX_WARNING: usize = 256;

/// Why a body is not an AdmissionReview custody can answer (HTTP 400).
#[derive(Debug, thiserror::Error)]
pub enum AdmissionError {
    #[error("not JSON: {0}")]
    Json(String),
    #[error(
        "not an AdmissionReview: apiVersion is {0:?}, expected \"admission.k8s.io/v1\" (set admissionReviewVersions: [\"v1\"])"
    )]
    Version(String),
    #[error("not an AdmissionReview: kind is {0:?}")]
    Kind(String),
    #[error("AdmissionReview has no request.uid")]
    NoUid,
    #[error("AdmissionReview request.{0} is malformed")]
    Field(&'static str),
}

/// What custody needs from a review.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Review {
    pub uid: String,
    pub operation: String,
    /// `Pod`, `Deployment`, … (request.kind.kind).
    pub kind: String,
    /// `namespace/name` as far as known, for messages.
    pub object: String,
    /// The namespace (`request.namespace`, else the object's `metadata.namespace`; empty
    /// for a cluster-scoped object): what selects the environment admission follows.
    pub namespace: String,
    /// Every container image of the pod spec, deduplicated, in order of appearance.
    pub images: Vec<String>,
}

// The parts of a review custody reads, typed: everything else (a real Pod with managedFields
// is 10-30 KB) is checked as JSON but skipped without building a tree. Only the few strings
// read are copied (serde copies a `Cow` inside an `Option`; escapes are decoded).

#[derive(Deserialize)]
struct ReviewWire<'a> {
    #[serde(rename = "apiVersion", borrow, default)]
    api_version: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    kind: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    request: Option<RequestWire<'a>>,
}

#[derive(Deserialize)]
struct RequestWire<'a> {
    #[serde(borrow, default)]
    uid: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    operation: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    kind: Option<KindWire<'a>>,
    #[serde(borrow, default)]
    name: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    namespace: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    object: Option<ObjectWire<'a>>,
}

#[derive(Deserialize)]
struct KindWire<'a> {
    #[serde(borrow, default)]
    kind: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct ObjectWire<'a> {
    #[serde(borrow, default)]
    metadata: Option<MetadataWire<'a>>,
    #[serde(borrow, default)]
    spec: Option<SpecWire<'a>>,
    /// `PodTemplate` keeps its pod spec here.
    #[serde(borrow, default)]
    template: Option<TemplateWire<'a>>,
}

#[derive(Deserialize)]
struct MetadataWire<'a> {
    #[serde(borrow, default)]
    name: Option<Cow<'a, str>>,
    #[serde(rename = "generateName", borrow, default)]
    generate_name: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    namespace: Option<Cow<'a, str>>,
}

/// A pod spec, or a spec holding one (`template.spec`, `jobTemplate.spec.template.spec`).
#[derive(Deserialize)]
struct SpecWire<'a> {
    #[serde(rename = "initContainers", borrow, default)]
    init_containers: Option<Vec<ContainerWire<'a>>>,
    #[serde(borrow, default)]
    containers: Option<Vec<ContainerWire<'a>>>,
    #[serde(rename = "ephemeralContainers", borrow, default)]
    ephemeral_containers: Option<Vec<ContainerWire<'a>>>,
    #[serde(borrow, default)]
    template: Option<Box<TemplateWire<'a>>>,
    #[serde(rename = "jobTemplate", borrow, default)]
    job_template: Option<Box<TemplateWire<'a>>>,
}

#[derive(Deserialize)]
struct TemplateWire<'a> {
    #[serde(borrow, default)]
    spec: Option<SpecWire<'a>>,
}

#[derive(Deserialize)]
struct ContainerWire<'a> {
    #[serde(borrow, default)]
    image: Option<Cow<'a, str>>,
}

impl<'a> SpecWire<'a> {
    fn template_spec(&self) -> Option<&SpecWire<'a>> {
        self.template.as_ref()?.spec.as_ref()
    }

    fn job_pod_spec(&self) -> Option<&SpecWire<'a>> {
        self.job_template.as_ref()?.spec.as_ref()?.template_spec()
    }

    fn has_containers(&self) -> bool {
        self.containers.is_some()
    }
}

/// Where each kind keeps its pod spec.
fn pod_spec<'r, 'a>(kind: &str, object: &'r ObjectWire<'a>) -> Option<&'r SpecWire<'a>> {
    let spec = object.spec.as_ref();
    match kind {
        "Pod" => spec,
        "CronJob" => spec?.job_pod_spec(),
        "PodTemplate" => object.template.as_ref()?.spec.as_ref(),
        "Deployment"
        | "ReplicaSet"
        | "StatefulSet"
        | "DaemonSet"
        | "Job"
        | "ReplicationController" => spec?.template_spec(),
        // Another kind: whichever of the usual places holds containers.
        _ => {
            let spec = spec?;
            [Some(spec), spec.template_spec(), spec.job_pod_spec()]
                .into_iter()
                .flatten()
                .find(|s| s.has_containers())
        }
    }
}

/// Parses a review. Objects without a pod spec give no images.
pub fn parse(body: &[u8]) -> Result<Review, AdmissionError> {
    let review: ReviewWire<'_> =
        serde_json::from_slice(body).map_err(|e| AdmissionError::Json(e.to_string()))?;
    let version = review.api_version.as_deref().unwrap_or_default();
    if version != REVIEW_API_VERSION {
        return Err(AdmissionError::Version(version.to_string()));
    }
    let kind = review.kind.as_deref().unwrap_or_default();
    if kind != "AdmissionReview" {
        return Err(AdmissionError::Kind(kind.to_string()));
    }
    let request = review.request.ok_or(AdmissionError::Field("request"))?;
    let uid = request
        .uid
        .filter(|u| !u.is_empty())
        .ok_or(AdmissionError::NoUid)?
        .into_owned();
    let operation = request
        .operation
        .ok_or(AdmissionError::Field("operation"))?
        .into_owned();
    let object_kind = request
        .kind
        .and_then(|k| k.kind)
        .ok_or(AdmissionError::Field("kind"))?
        .into_owned();
    let object = request.object.as_ref();
    let metadata = object.and_then(|o| o.metadata.as_ref());
    let name = request
        .name
        .as_deref()
        .filter(|n| !n.is_empty())
        .or_else(|| metadata.and_then(|m| m.name.as_deref()))
        .or_else(|| metadata.and_then(|m| m.generate_name.as_deref()))
        .unwrap_or("");
    let namespace = request
        .namespace
        .as_deref()
        .filter(|n| !n.is_empty())
        .or_else(|| metadata.and_then(|m| m.namespace.as_deref()))
        .unwrap_or("");
    let mut images: Vec<String> = Vec::new();
    if let Some(spec) = object.and_then(|o| pod_spec(&object_kind, o)) {
        let lists = [
            &spec.init_containers,
            &spec.containers,
            &spec.ephemeral_containers,
        ];
        for container in lists.into_iter().flatten().flatten() {
            let image = container
                .image
                .as_deref()
                .ok_or(AdmissionError::Field("object container image"))?;
            if !images.iter().any(|i| i == image) {
                images.push(image.to_string());
            }
        }
    }
    Ok(Review {
        uid,
        operation,
        object: format!("{object_kind} {namespace}/{name}"),
        namespace: namespace.to_owned(),
        kind: object_kind,
        images,
    })
}

/// The digest an image reference is pinned to (`repo@sha256:<64 hex>`), if any.
pub fn image_digest(image: &str) -> Option<Sha256Digest> {
    let (_, digest) = image.rsplit_once('@')?;
    Sha256Digest::from_hex(digest.strip_prefix("sha256:")?).ok()
}

/// The answer: allowed, or denied with a 403 status and a message for kubectl.
pub fn response(uid: &str, denied: Option<&str>, warnings: &[String]) -> String {
    let answer = ReviewAnswer {
        api_version: REVIEW_API_VERSION,
        kind: "AdmissionReview",
        response: AnswerBody {
            uid,
            allowed: denied.is_none(),
            status: denied.map(|message| AnswerStatus {
                code: 403,
                reason: "Forbidden",
                message,
            }),
            warnings,
        },
    };
    // Serializing strings, bools and integers into a String cannot fail.
    serde_json::to_string(&answer).unwrap_or_default()
}

/// The answer as the API server reads it (`AdmissionReview` v1 with `response`).
#[derive(Serialize)]
struct ReviewAnswer<'a> {
    #[serde(rename = "apiVersion")]
    api_version: &'static str,
    kind: &'static str,
    response: AnswerBody<'a>,
}

#[derive(Serialize)]
struct AnswerBody<'a> {
    uid: &'a str,
    allowed: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    status: Option<AnswerStatus<'a>>,
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    warnings: &'a [String],
}

#[derive(Serialize)]
struct AnswerStatus<'a> {
    code: u16,
    reason: &'static str,
    message: &'a str,
}

/// `custody: 1 of 3 images denied: image X [code] message (fix: …); image Y …`.
pub fn denial_message(total: usize, denied: &[&Verdict]) -> String {
    let mut parts = Vec::new();
    for v in denied {
        parts.push(format!("{} {}", v.artifact.describe(), v.reasons()));
    }
    let policy = denied
        .first()
        .map(|v| format!(" (policy {})", short(&v.policy_digest)))
        .unwrap_or_default();
    let noun = if total == 1 { "image" } else { "images" };
    let message = format!(
        "custody: {} of {total} {noun} denied: {}{policy}",
        denied.len(),
        parts.join(" | ")
    );
    truncate(message, MAX_MESSAGE)
}

/// One warning line per policy warning: `image X: [code] message`.
pub fn warnings(verdict: &Verdict) -> Vec<String> {
    verdict
        .warnings
        .iter()
        .map(|f| {
            truncate(
                format!(
                    "custody: {}: [{}] {}",
                    verdict.artifact.describe(),
                    f.code,
                    f.message
                ),
                MAX_WARNING,
            )
        })
        .collect()
}

fn short(digest: &str) -> &str {
    digest.get(..19).unwrap_or(digest)
}

fn truncate(mut s: String, max: usize) -> String {
    if s.len() > max {
        let mut end = max.saturating_sub(3);
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s.truncate(end);
        s.push_str("...");
    }
    s
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::{Value as Json, json};

    fn review(kind: &str, object: Json) -> Vec<u8> {
        json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
               "request": {"uid": "u-1", "kind": {"group": "", "version": "v1", "kind": kind},
                           "operation": "CREATE", "namespace": "ns", "object": object}})
        .to_string()
        .into_bytes()
    }

    #[test]
    fn finds_images_of_every_kind() {
        let spec = json!({"initContainers": [{"name": "i", "image": "a@sha256:00"}],
                          "containers": [{"name": "c", "image": "b:1"}, {"name": "d", "image": "b:1"}],
                          "ephemeralContainers": [{"name": "e", "image": "c"}]});
        let want = vec!["a@sha256:00", "b:1", "c"];
        let pod = parse(&review("Pod", json!({"spec": spec}))).unwrap();
        assert_eq!(pod.images, want);
        assert_eq!(pod.uid, "u-1");
        let deploy = parse(&review(
            "Deployment",
            json!({"spec": {"template": {"spec": spec}}}),
        ))
        .unwrap();
        assert_eq!(deploy.images, want);
        let cron = parse(&review(
            "CronJob",
            json!({"spec": {"jobTemplate": {"spec": {"template": {"spec": spec}}}}}),
        ))
        .unwrap();
        assert_eq!(cron.images, want);
        let cm = parse(&review("ConfigMap", json!({"data": {"a": "b"}}))).unwrap();
        assert!(cm.images.is_empty());
    }

    #[test]
    fn refuses_what_is_not_a_review() {
        assert!(matches!(parse(b"nope"), Err(AdmissionError::Json(_))));
        assert!(matches!(
            parse(br#"{"apiVersion":"admission.k8s.io/v1beta1","kind":"AdmissionReview"}"#),
            Err(AdmissionError::Version(_))
        ));
        assert!(matches!(
            parse(br#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{}}"#),
            Err(AdmissionError::NoUid)
        ));
    }

    #[test]
    fn reads_escaped_strings_and_skips_what_it_does_not_use() {
        // An escaped string is decoded (owned, not borrowed); unknown fields of any shape,
        // managedFields included, are skipped.
        let body = br#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview",
            "request":{"uid":"u\u002d2","kind":{"kind":"Pod"},"operation":"CREATE",
            "object":{"metadata":{"generateName":"web-","managedFields":[{"f:spec":{"x":[1,2.5,null,true]}}]},
                      "spec":{"volumes":[{"name":"v"}],"containers":[{"name":"c","image":"reg\/app@sha256:00","env":[]}]}}}}"#;
        let review = parse(body).unwrap();
        assert_eq!(review.uid, "u-2");
        assert_eq!(review.images, vec!["reg/app@sha256:00"]);
        assert_eq!(review.object, "Pod /web-");
        // Fields custody reads must have their type: a clear error, not a silent default.
        for bad in [
            r#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":5}}"#,
            r#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"u","kind":{"kind":"Pod"},"operation":"CREATE","object":{"spec":{"containers":{"image":"x"}}}}}"#,
            r#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"u","kind":{"kind":"Pod"},"operation":"CREATE","object":{"spec":{"containers":[{"name":"no-image"}]}}}}"#,
        ] {
            assert!(parse(bad.as_bytes()).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_namespace_is_the_request_s_else_the_object_s() {
        let review = |request_ns: &str, object_ns: &str| {
            let body = json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
                "request": {"uid": "u", "kind": {"kind": "Pod"}, "operation": "CREATE",
                    "namespace": request_ns,
                    "object": {"metadata": {"name": "web", "namespace": object_ns},
                               "spec": {"containers": [{"image": "app"}]}}}});
            parse(body.to_string().as_bytes()).unwrap()
        };
        let r = review("shop-prod", "other");
        assert_eq!(
            (r.namespace.as_str(), r.object.as_str()),
            ("shop-prod", "Pod shop-prod/web")
        );
        assert_eq!(review("", "shop-prod").namespace, "shop-prod");
        assert_eq!(review("", "").namespace, "");
    }

    #[test]
    fn answers_are_admission_reviews() {
        let allowed: Json = serde_json::from_str(&response("u-1", None, &[])).unwrap();
        assert_eq!(
            allowed,
            json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
                   "response": {"uid": "u-1", "allowed": true}})
        );
        let denied: Json =
            serde_json::from_str(&response("u-2", Some("no \"evidence\""), &["w".into()])).unwrap();
        assert_eq!(
            denied["response"],
            json!({"uid": "u-2", "allowed": false, "warnings": ["w"],
                   "status": {"code": 403, "reason": "Forbidden", "message": "no \"evidence\""}})
        );
    }

    #[test]
    fn digests_only_from_pinned_references() {
        let hex = "ab".repeat(32);
        assert!(image_digest(&format!("ghcr.io/a/b@sha256:{hex}")).is_some());
        assert!(image_digest(&format!("ghcr.io/a/b:1@sha256:{hex}")).is_some());
        assert!(image_digest("ghcr.io/a/b:1").is_none());
        assert!(image_digest("ghcr.io/a/b@sha256:abc").is_none());
        assert!(image_digest(&format!("ghcr.io/a/b@sha512:{hex}")).is_none());
    }

    #[test]
    fn long_messages_are_cut_on_a_character() {
        let s = truncate("é".repeat(10), 8);
        assert!(s.len() <= 8 && s.ends_with("..."));
    }
}
