//! The KYC worker: drains `kyc_jobs` (Barong's KYCAID Sidekiq jobs, §8.3, §8.4) on the queue
//! loop the mailer and publisher share (`events::queue`), woken by the change notice.
//!
//! - `applicant`: the submitted profile becomes (or updates) a KYCAID applicant; its id is
//!   kept on the profile.
//! - `documents`, `address`: the batch's files are uploaded, the document created, and a
//!   verification asked for. The files come through the [`DocumentFiles`] port, so the worker
//!   does not know where uploads are kept.
//! - `verification`: a completed verification (announced by KYCAID's callback, which only
//!   queues this job so that it stays fast) is fetched and applied: private labels `document`,
//!   `address`, `profile` set to verified or rejected, the profile's state with them, level and
//!   state recomputed, all in one transaction with the events.
//!
//! Each job is claimed alone, in its own transaction, which also holds what applying it
//! writes. A job KYCAID cannot take now (down, busy, token refused) or that waits on another
//! (documents before their applicant) is retried with a per-job back-off; one KYCAID refuses
//! for good is finished with its reason, and its subject marked rejected, as Barong does.
//! With no KYCAID token the worker sends nothing: jobs stay queued (said once in the log,
//! counted in `portcullis_kyc_jobs_pending`) until the token is configured.

pub mod kycaid;

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::sync::Notify;

use self::kycaid::{ApplicantFields, Kycaid, KycaidError, NewDocument};
use crate::config::Settings;
use crate::crypto::SecretBox;
use crate::domain::kyc::{KycJob, REJECTED, kycaid_document_type};
use crate::domain::profile::contexts;
use crate::domain::subject::SubjectKind;
use crate::events::Events;
use crate::events::queue::{self, Pace, Round, Worker};
use crate::gate::subjects::Subjects;
use crate::store::kyc_jobs::{self, Claimed};
use crate::store::{Db, Store, StoreError, labels, users};

/// Jobs handled in one round before the loop looks at the bell again.
const BATCH: usize = 10;

/// One uploaded file of a document batch, as the uploads' storage gives it back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DocumentFile {
    /// Barong's type: `Passport`, `Identity card`, `Driver license`, `Address`, ...
    pub doc_type: String,
    pub doc_number: Option<String>,
    /// `YYYY-MM-DD`.
    pub doc_expire: Option<String>,
    /// `front_side`, `back_side` or `selfie` (none for addresses).
    pub doc_category: Option<String>,
    pub file_name: String,
    pub content_type: String,
    pub bytes: Vec<u8>,
    /// The address a proof of address proves (none for identity documents).
    pub address: Option<PostalAddress>,
}

/// The address sent with a proof of address, as the user gave it to `POST /addresses`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
pub struct PostalAddress {
    pub country: String,
    pub address: String,
    pub city: String,
    pub postcode: String,
}

/// Where the worker reads a batch of uploaded documents: implemented by the uploads' storage.
pub trait DocumentFiles: Send + Sync + 'static {
    /// The files of the user's documents sharing `identificator`, oldest first. An error is
    /// taken as passing (storage unreachable): the job is retried.
    fn batch(
        &self,
        user_id: i64,
        identificator: &str,
    ) -> impl Future<Output = Result<Vec<DocumentFile>, String>> + Send;
}

/// No uploads storage on this node: document and address jobs wait (retried with back-off)
/// until one is wired in.
pub struct NoDocumentFiles;

impl DocumentFiles for NoDocumentFiles {
    async fn batch(&self, _: i64, _: &str) -> Result<Vec<DocumentFile>, String> {
        Err("no document storage on this node".into())
    }
}

/// What the worker uses; every piece is shared with the rest of the node.
#[derive(Clone)]
pub struct KycParts {
    pub store: Store,
    pub settings: Arc<Settings>,
    pub secrets: Arc<SecretBox>,
    pub events: Arc<Events>,
    /// This node's cache of subjects, dropped for a user whose labels changed (other nodes
    /// drop theirs on the `users` change notice).
    pub subjects: Arc<Subjects>,
    /// `None`: no token, nothing is sent.
    pub kycaid: Option<Kycaid>,
}

/// How one job ended.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Outcome {
    Done,
    /// KYCAID refused it for good; the job is finished with this reason.
    Refused(String),
    /// It waits on something else (its applicant, its files): tried again later.
    Waiting(String),
    /// KYCAID cannot take it now: tried again later, and the worker backs off.
    Unavailable(String),
}

impl Outcome {
    fn label(&self) -> &'static str {
        match self {
            Outcome::Done => "done",
            Outcome::Refused(_) => "refused",
            Outcome::Waiting(_) => "waiting",
            Outcome::Unavailable(_) => "unavailable",
        }
    }
}

impl From<KycaidError> for Outcome {
    fn from(err: KycaidError) -> Outcome {
        match err {
            KycaidError::Unavailable(why) => Outcome::Unavailable(why),
            KycaidError::Refused(why) => Outcome::Refused(why),
        }
    }
}

/// The worker; `F` reads uploaded documents.
pub struct KycWorker<F> {
    parts: KycParts,
    files: F,
    /// Whether "no token, jobs wait" was logged already.
    said_unconfigured: bool,
}

/// Runs the worker until the process ends; `wake` rings when `kyc_jobs` has work.
pub async fn run<F: DocumentFiles>(parts: KycParts, files: F, wake: Arc<Notify>) {
    let kyc = &parts.settings.kyc;
    let pace = Pace {
        idle_wait: kyc.worker_idle_wait,
        first_backoff: kyc.retry_first.max(Duration::from_millis(100)),
        max_backoff: kyc
            .retry_max
            .clamp(Duration::from_secs(1), Duration::from_secs(60)),
    };
    queue::run(KycWorker::new(parts, files), pace, wake).await;
}

impl<F: DocumentFiles> Worker for KycWorker<F> {
    async fn round(&mut self) -> Round {
        KycWorker::round(self).await
    }
}

impl<F: DocumentFiles> KycWorker<F> {
    pub fn new(parts: KycParts, files: F) -> KycWorker<F> {
        KycWorker {
            parts,
            files,
            said_unconfigured: false,
        }
    }

    /// Handles up to [`BATCH`] due jobs, one transaction each.
    pub async fn round(&mut self) -> Round {
        match self.pending().await {
            Ok(0) => return Round::Drained,
            Ok(_) => {}
            Err(err) => {
                tracing::warn!(error = %err, "kyc jobs unavailable; retrying");
                return Round::Failed;
            }
        }
        let Some(kycaid) = self.parts.kycaid.clone() else {
            if !self.said_unconfigured {
                self.said_unconfigured = true;
                tracing::warn!(
                    "KYC jobs are waiting: kyc.provider is kycaid but kyc.kycaid_authorization_token (BARONG_KYCAID_AUTHORIZATION_TOKEN) is empty; nothing is sent until it is set"
                );
            }
            return Round::Drained;
        };
        for _ in 0..BATCH {
            match self.one(&kycaid).await {
                Ok(None) => return Round::Drained,
                Ok(Some(Outcome::Unavailable(_))) => return Round::Failed,
                Ok(Some(_)) => {}
                Err(err) => {
                    tracing::warn!(error = %err, "kyc job not recorded; retrying");
                    return Round::Failed;
                }
            }
        }
        Round::Full
    }

    /// Jobs not finished, reported as `portcullis_kyc_jobs_pending`.
    async fn pending(&self) -> Result<i64, StoreError> {
        let client = self.parts.store.client().await?;
        let pending = kyc_jobs::pending_count(&client).await?;
        metrics::gauge!("portcullis_kyc_jobs_pending").set(pending as f64);
        Ok(pending)
    }

    /// Claims, sends and records one job; `None` when none is due.
    async fn one(&self, kycaid: &Kycaid) -> Result<Option<Outcome>, StoreError> {
        let mut client = self.parts.store.client().await?;
        let tx = client.transaction().await?;
        let Some(claimed) = kyc_jobs::claim_one(&tx).await? else {
            tx.commit().await?;
            return Ok(None);
        };
        let mut progress = claimed.progress.clone();
        let outcome = match &claimed.job {
            None => Outcome::Refused("unknown job kind".into()),
            Some(job) => {
                self.handle(&tx, kycaid, &claimed, job, &mut progress)
                    .await?
            }
        };
        let kind = claimed.job.as_ref().map_or("unknown", KycJob::kind);
        let kyc = &self.parts.settings.kyc;
        match &outcome {
            Outcome::Done => kyc_jobs::finish(&tx, claimed.id, &progress, None).await?,
            Outcome::Refused(why) => {
                tracing::warn!(job = claimed.id, kind, reason = %why, "KYC job refused for good");
                kyc_jobs::finish(&tx, claimed.id, &progress, Some(why)).await?;
            }
            Outcome::Waiting(why) | Outcome::Unavailable(why) => {
                tracing::info!(job = claimed.id, kind, attempts = claimed.attempts + 1, reason = %why, "KYC job retried later");
                let why: String = why.chars().take(1000).collect();
                kyc_jobs::retry_later(
                    &tx,
                    claimed.id,
                    &progress,
                    &why,
                    kyc.retry_first,
                    kyc.retry_max,
                )
                .await?;
            }
        }
        let uid = users::find_by_id(&tx, claimed.user_id)
            .await?
            .map(|u| u.uid);
        tx.commit().await?;
        metrics::counter!("portcullis_kyc_jobs_total", "kind" => kind, "outcome" => outcome.label())
            .increment(1);
        // What the job wrote is committed: this node's gate reads the user afresh at once
        // (other nodes on the change notice), and the events go out.
        if let Some(uid) = uid {
            self.parts.subjects.invalidate(SubjectKind::User, &uid);
        }
        self.parts.events.ring();
        Ok(Some(outcome))
    }

    async fn handle<C: Db>(
        &self,
        c: &C,
        kycaid: &Kycaid,
        claimed: &Claimed,
        job: &KycJob,
        progress: &mut Value,
    ) -> Result<Outcome, StoreError> {
        let user_id = claimed.user_id;
        Ok(match job {
            KycJob::Applicant { profile_id } => {
                self.applicant(c, kycaid, user_id, *profile_id).await?
            }
            KycJob::Documents { identificator } => {
                self.documents(c, kycaid, user_id, identificator, false, progress)
                    .await?
            }
            KycJob::Address { identificator } => {
                self.documents(c, kycaid, user_id, identificator, true, progress)
                    .await?
            }
            KycJob::Verification { verification_id } => {
                self.verification(c, kycaid, user_id, verification_id)
                    .await?
            }
        })
    }

    /// Creates the applicant of the profile (or updates the user's existing one) and keeps its
    /// id on the profile. KYCAID refusing the details rejects the profile (Barong's answer).
    async fn applicant<C: Db>(
        &self,
        c: &C,
        kycaid: &Kycaid,
        user_id: i64,
        profile_id: i64,
    ) -> Result<Outcome, StoreError> {
        let Some(profile) = users::profile_of(c, user_id, profile_id).await? else {
            return Ok(Outcome::Refused("the profile no longer exists".into()));
        };
        let Some(user) = users::find_by_id(c, user_id).await? else {
            return Ok(Outcome::Refused("the user no longer exists".into()));
        };
        let secrets = &self.parts.secrets;
        let open = |context: &str, sealed: &Option<String>| {
            sealed
                .as_deref()
                .and_then(|v| secrets.open_string(context, v).ok())
        };
        let fields = ApplicantFields {
            first_name: open(contexts::FIRST_NAME, &profile.first_name_encrypted),
            last_name: open(contexts::LAST_NAME, &profile.last_name_encrypted),
            dob: open(contexts::DOB, &profile.dob_encrypted),
            residence_country: profile.country.clone(),
            email: user.email.clone(),
            external_applicant_id: user.uid.clone(),
        };
        // One applicant per person: a later profile updates the one an earlier profile made.
        let existing = match &profile.applicant_id {
            Some(id) => Some(id.clone()),
            None => users::applicant_id(c, user_id).await?,
        };
        let sent = match &existing {
            Some(id) => kycaid
                .update_applicant(id, &fields)
                .await
                .map(|()| id.clone()),
            None => kycaid.create_applicant(&fields).await,
        };
        match sent {
            Ok(applicant_id) => {
                users::set_applicant_id(c, profile.id, &applicant_id).await?;
                Ok(Outcome::Done)
            }
            Err(KycaidError::Refused(why)) => {
                users::set_profile_state(c, profile.id, REJECTED).await?;
                self.set_labels(c, user_id, &[("profile", REJECTED)])
                    .await?;
                Ok(Outcome::Refused(why))
            }
            Err(err) => Ok(err.into()),
        }
    }

    /// Sends a batch of documents (or a proof of address) and asks for its verification.
    /// `progress` keeps the KYCAID documents already created, so a retry does not create them
    /// twice.
    async fn documents<C: Db>(
        &self,
        c: &C,
        kycaid: &Kycaid,
        user_id: i64,
        identificator: &str,
        address: bool,
        progress: &mut Value,
    ) -> Result<Outcome, StoreError> {
        let label = if address { "address" } else { "document" };
        let Some(applicant_id) = users::applicant_id(c, user_id).await? else {
            return Ok(Outcome::Waiting("the applicant is not created yet".into()));
        };
        let files = match self.files.batch(user_id, identificator).await {
            Ok(files) => files,
            Err(why) => return Ok(Outcome::Waiting(why)),
        };
        let plan = match plan_documents(&files, address) {
            Ok(plan) => plan,
            Err(why) => {
                self.set_labels(c, user_id, &[(label, REJECTED)]).await?;
                return Ok(Outcome::Refused(why));
            }
        };
        if address {
            // KYCAID checks a proof of address against an address of the applicant, so the
            // address goes first (Barong's address worker does the same).
            if let Err(outcome) = ensure_address(kycaid, &applicant_id, &files, progress).await {
                return Ok(outcome);
            }
        }
        let outcome = send_documents(kycaid, &applicant_id, &plan, progress).await;
        if matches!(outcome, Outcome::Refused(_)) {
            // Barong's answer: what KYCAID will not take is rejected, and the user may send
            // another batch.
            self.set_labels(c, user_id, &[(label, REJECTED)]).await?;
        }
        Ok(outcome)
    }

    /// Fetches a completed verification and applies its verdicts.
    async fn verification<C: Db>(
        &self,
        c: &C,
        kycaid: &Kycaid,
        user_id: i64,
        verification_id: &str,
    ) -> Result<Outcome, StoreError> {
        let verification = match kycaid.verification(verification_id).await {
            Ok(v) => v,
            Err(err) => return Ok(err.into()),
        };
        if verification.status != "completed" {
            return Ok(Outcome::Waiting(format!(
                "verification is {}",
                if crate::domain::kyc::is_identifier(&verification.status) {
                    verification.status.as_str()
                } else {
                    "not completed"
                }
            )));
        }
        // The callback named the applicant; KYCAID's own record must agree before anything
        // is written to this user.
        let applicant_id = match &verification.applicant_id {
            Some(id) if users::user_id_by_applicant(c, id).await? == Some(user_id) => id.clone(),
            _ => {
                return Ok(Outcome::Refused(
                    "the verification is not about this user's applicant".into(),
                ));
            }
        };
        let changes = verification.label_changes();
        for (key, value) in &changes {
            if *key == "profile" {
                users::decide_profile(c, user_id, &applicant_id, value).await?;
            }
        }
        self.set_labels(c, user_id, &changes).await?;
        Ok(Outcome::Done)
    }

    /// Sets private labels (recomputing level and state) with their events.
    async fn set_labels<C: Db>(
        &self,
        c: &C,
        user_id: i64,
        changes: &[(&str, &str)],
    ) -> Result<(), StoreError> {
        for (key, value) in changes {
            let change = labels::set(
                c,
                &self.parts.settings.users,
                user_id,
                key,
                value,
                "private",
            )
            .await?;
            self.parts.events.label_changed(c, &change).await?;
        }
        Ok(())
    }
}

/// One KYCAID document to make from a batch: its name in `progress`, its type, and its files
/// (front side first).
#[derive(Debug, Clone, PartialEq, Eq)]
struct PlannedDocument<'a> {
    name: &'static str,
    kind: &'static str,
    number: Option<&'a str>,
    expiry: Option<&'a str>,
    files: Vec<&'a DocumentFile>,
}

/// What a batch becomes at KYCAID, and the checks its verification asks for. An identity
/// batch is one document (front and back side) plus a `SELFIE_IMAGE` when a selfie came with
/// it (checked as `FACIAL`); a proof of address is one `ADDRESS_DOCUMENT`.
fn plan_documents(
    files: &[DocumentFile],
    address: bool,
) -> Result<(Vec<PlannedDocument<'_>>, Vec<&'static str>), String> {
    fn category<'f>(f: &&'f DocumentFile) -> Option<&'f str> {
        f.doc_category.as_deref()
    }
    let (selfies, sides): (Vec<&DocumentFile>, Vec<&DocumentFile>) =
        files.iter().partition(|f| category(f) == Some("selfie"));
    let Some(first) = sides.first() else {
        return Err("the batch has no document file".into());
    };
    let kind = if address {
        "ADDRESS_DOCUMENT"
    } else {
        kycaid_document_type(&first.doc_type)
            .filter(|k| *k != "ADDRESS_DOCUMENT")
            .ok_or_else(|| "the document type has no KYCAID equivalent".to_string())?
    };
    // Front side first; a batch without categories keeps its upload order.
    let mut ordered = sides.clone();
    ordered.sort_by_key(|f| category(f) == Some("back_side"));
    ordered.truncate(2);
    let mut plan = vec![PlannedDocument {
        name: if address { "address" } else { "document" },
        kind,
        number: first.doc_number.as_deref(),
        expiry: first.doc_expire.as_deref(),
        files: ordered,
    }];
    let mut checks = vec![if address { "ADDRESS" } else { "DOCUMENT" }];
    if let (false, Some(selfie)) = (address, selfies.first()) {
        plan.push(PlannedDocument {
            name: "selfie",
            kind: "SELFIE_IMAGE",
            number: None,
            expiry: None,
            files: vec![selfie],
        });
        checks.push("FACIAL");
    }
    Ok((plan, checks))
}

/// Creates the applicant's registered address from the batch, once: `progress` keeps its id
/// so a retry does not create it twice. A batch without an address (none was sealed with
/// it) is sent without one, and KYCAID decides.
async fn ensure_address(
    kycaid: &Kycaid,
    applicant_id: &str,
    files: &[DocumentFile],
    progress: &mut Value,
) -> Result<(), Outcome> {
    if !progress.is_object() {
        *progress = json!({});
    }
    if progress["address_id"].is_string() {
        return Ok(());
    }
    let Some(address) = files.iter().find_map(|f| f.address.as_ref()) else {
        return Ok(());
    };
    match kycaid.create_address(applicant_id, address).await {
        Ok(id) => {
            progress["address_id"] = json!(id);
            Ok(())
        }
        Err(err) => Err(err.into()),
    }
}

/// Uploads the files, creates the documents and the verification, skipping what `progress`
/// says KYCAID holds already and recording what it now holds.
async fn send_documents(
    kycaid: &Kycaid,
    applicant_id: &str,
    (plan, checks): &(Vec<PlannedDocument<'_>>, Vec<&'static str>),
    progress: &mut Value,
) -> Outcome {
    if !progress.is_object() {
        *progress = json!({});
    }
    for document in plan {
        if progress["documents"][document.name].is_string() {
            continue;
        }
        let mut ids = Vec::new();
        for file in &document.files {
            match kycaid
                .upload_file(&file.file_name, &file.content_type, &file.bytes)
                .await
            {
                Ok(id) => ids.push(id),
                Err(err) => return err.into(),
            }
        }
        let mut ids = ids.into_iter();
        let new = NewDocument {
            kind: document.kind.to_string(),
            number: document.number.map(str::to_owned),
            expiry_date: document.expiry.map(str::to_owned),
            front_side_id: ids.next().unwrap_or_default(),
            back_side_id: ids.next(),
        };
        match kycaid.create_document(applicant_id, &new).await {
            Ok(id) => progress["documents"][document.name] = json!(id),
            Err(err) => return err.into(),
        }
    }
    match kycaid.create_verification(applicant_id, checks).await {
        Ok(id) => {
            progress["verification_id"] = json!(id);
            Outcome::Done
        }
        Err(err) => err.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(doc_type: &str, category: Option<&str>, name: &str) -> DocumentFile {
        DocumentFile {
            doc_type: doc_type.into(),
            doc_number: Some("AB 123".into()),
            doc_expire: Some("2031-01-01".into()),
            doc_category: category.map(str::to_owned),
            file_name: name.into(),
            content_type: "image/png".into(),
            bytes: vec![1, 2, 3],
            address: None,
        }
    }

    #[test]
    fn an_identity_batch_is_a_document_and_a_selfie() {
        let files = [
            file("Driver license", Some("selfie"), "me.png"),
            file("Driver license", Some("back_side"), "back.png"),
            file("Driver license", Some("front_side"), "front.png"),
        ];
        let (plan, checks) = plan_documents(&files, false).unwrap();
        assert_eq!(checks, ["DOCUMENT", "FACIAL"]);
        assert_eq!(plan.len(), 2);
        assert_eq!(plan[0].kind, "DRIVERS_LICENSE");
        let names: Vec<&str> = plan[0].files.iter().map(|f| f.file_name.as_str()).collect();
        assert_eq!(names, ["front.png", "back.png"]);
        assert_eq!(plan[0].number, Some("AB 123"));
        assert_eq!(plan[1].kind, "SELFIE_IMAGE");
        assert_eq!(plan[1].files[0].file_name, "me.png");
    }

    #[test]
    fn a_proof_of_address_is_one_address_document() {
        let files = [file("Address", None, "bill.pdf")];
        let (plan, checks) = plan_documents(&files, true).unwrap();
        assert_eq!(checks, ["ADDRESS"]);
        assert_eq!(plan.len(), 1);
        assert_eq!(plan[0].kind, "ADDRESS_DOCUMENT");
    }

    #[test]
    fn batches_kycaid_cannot_take_are_refused() {
        assert!(plan_documents(&[], false).is_err());
        assert!(plan_documents(&[file("Passport", Some("selfie"), "me.png")], false).is_err());
        assert!(plan_documents(&[file("Selfie card", None, "x.png")], false).is_err());
        // An address document sent as an identity document.
        assert!(plan_documents(&[file("Utility Bill", None, "x.png")], false).is_err());
    }
}
