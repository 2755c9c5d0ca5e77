//! `/resource/documents` and `/resource/addresses`: KYC documents and proofs of address
//! (Barong §8.4), one row per uploaded file, the files on object storage (`crate::uploads`),
//! and `GET /resource/documents/{id}/upload`, which serves a file to its owner alone.
//!
//! An upload is all or nothing: files are stored as they arrive (one at a time in memory, each
//! checked for size and content while it is read), and rows are written in one transaction
//! with the labels, events and KYC job; if anything fails the stored files are deleted again.
//!
//! Where Barong checks in its order (parameters, expiry, counts, then each file), a streamed
//! form is checked as it arrives: a file is refused (type, size, content, one too many) when it
//! is read, before the text fields after it are; the text fields are checked once the form is
//! complete, in Barong's order.

use axum::body::Body;
use axum::extract::{DefaultBodyLimit, FromRef, Path, Request, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use bytes::{Bytes, BytesMut};
use http::{HeaderValue, StatusCode, header};
use serde_json::json;

use super::{CurrentUser, ResourceState};
use crate::api::entities::{Document, contexts};
use crate::api::error::{ApiError, ApiResult};
use crate::api::multipart::{FilePart, Form};
use crate::api::params::Params;
use crate::config::KycProvider;
use crate::domain::documents::{self as rules, FileKind};
use crate::domain::kyc::KycJob;
use crate::routes::{Endpoint, Guard, In, Param, param, reply, returns_list};
use crate::store::documents::{self, DocumentRow, DocumentWrite};
use crate::store::users::UserRow;
use crate::store::{Db, StoreError, kyc_jobs, labels};
use crate::uploads::Uploads;

const UPLOAD: Param = param(
    "upload",
    In::Body,
    true,
    "One or more files (repeat the field, `upload` or `upload[]`): uploads.extension_whitelist, between uploads.min_size_bytes and uploads.max_size_mb, content matching the extension",
);

const DOCUMENT_FIELDS: &[Param] = &[
    param("doc_type", In::Body, true, "Document type").one_of(rules::DOC_TYPES),
    param(
        "doc_number",
        In::Body,
        true,
        "Document number: letters, digits, spaces and -, up to 128",
    ),
    UPLOAD,
    param(
        "doc_expire",
        In::Body,
        false,
        "Document expiration date, YYYY-MM-DD (required, and not past, when uploads.required_docs_expire)",
    ),
    param(
        "doc_category",
        In::Body,
        false,
        "Category of the submitted document",
    )
    .one_of(rules::CATEGORIES),
    param(
        "identificator",
        In::Body,
        false,
        "Identificator for documents to be supplied together (letters, digits, - and _, up to 64; random if absent)",
    ),
    param(
        "metadata",
        In::Body,
        false,
        "Any additional key: value pairs in json string format",
    ),
];

const ADDRESS_FIELDS: &[Param] = &[
    param("country", In::Body, true, "Country"),
    param("address", In::Body, true, "Street address"),
    param("city", In::Body, true, "City (may be blank)"),
    param("postcode", In::Body, true, "Postcode (may be blank)"),
    UPLOAD,
];

/// The longest address field kept.
const MAX_ADDRESS_FIELD: usize = 255;

pub fn endpoints<S>() -> Vec<Endpoint<S>>
where
    S: Clone + Send + Sync + 'static,
    ResourceState: FromRef<S>,
{
    vec![
        Endpoint {
            doc: super::doc(
                "POST",
                "resource/documents",
                "Upload a new document for current user (multipart/form-data)",
                DOCUMENT_FIELDS,
                const {
                    &[
                        returns_list::<Document>(
                            201,
                            "Document is uploaded: one document per file, sharing identificator",
                        ),
                        reply(
                            400,
                            "resource.documents.limit_reached, resource.documents.limit_will_be_reached, request.invalid_multipart",
                        ),
                        reply(401, "jwt.decode_and_verify, authz.*"),
                        reply(
                            413,
                            "request.body_too_large (the whole form; a file over the limit is upload.too_large)",
                        ),
                        reply(
                            422,
                            "resource.document.missing_doc_type, empty_doc_type, missing_doc_number, empty_doc_number, missing_upload, empty_upload; resource.documents.expire_not_a_date, invalid_format, already_expired; doc_type.inclusion, doc_number.too_long, doc_number.invalid, doc_category.inclusion, identificator.invalid, metadata.invalid_format; upload.invalid_extension, upload.empty, upload.too_small, upload.too_large, upload.content_mismatch",
                        ),
                        reply(503, "server.unavailable (database or file storage)"),
                    ]
                },
            ),
            guard: Guard::Subject,
            // The form's own limit, from the upload settings, replaces the server's smaller
            // one (see `Form::read`).
            handler: post(create).layer(DefaultBodyLimit::disable()),
        },
        Endpoint {
            doc: super::doc(
                "GET",
                "resource/documents",
                "Return current user documents list",
                &[],
                const {
                    &[
                        returns_list::<Document>(200, "The user's documents, numbers masked"),
                        reply(401, "jwt.decode_and_verify, authz.*"),
                    ]
                },
            ),
            guard: Guard::Subject,
            handler: get(list),
        },
        Endpoint {
            doc: super::doc(
                "GET",
                "resource/documents/{id}/upload",
                "The file of one of current user's documents",
                const { &[param("id", In::Path, true, "Document id").integer()] },
                const {
                    &[
                        reply(
                            200,
                            "The file, with its Content-Type (image/jpeg, image/png, application/pdf)",
                        ),
                        reply(401, "jwt.decode_and_verify, authz.*"),
                        reply(404, "record.not_found (no such document of this user)"),
                        reply(503, "server.unavailable"),
                    ]
                },
            ),
            guard: Guard::Subject,
            handler: get(download),
        },
        Endpoint {
            doc: super::doc(
                "POST",
                "resource/addresses",
                "Upload a new address approval document for current user (multipart/form-data)",
                ADDRESS_FIELDS,
                const {
                    &[
                        returns_list::<Document>(201, "New address approval document was uploaded"),
                        reply(
                            400,
                            "resource.documents.limit_reached, resource.documents.limit_will_be_reached, request.invalid_multipart",
                        ),
                        reply(401, "jwt.decode_and_verify, authz.*"),
                        reply(413, "request.body_too_large"),
                        reply(
                            422,
                            "resource.address.missing_country, empty_country, missing_address, empty_address, missing_city, missing_postcode, missing_upload, empty_upload; country.too_long, address.too_long, city.too_long, postcode.too_long; upload.invalid_extension, upload.empty, upload.too_small, upload.too_large, upload.content_mismatch",
                        ),
                        reply(503, "server.unavailable (database or file storage)"),
                    ]
                },
            ),
            guard: Guard::Subject,
            handler: post(create_address).layer(DefaultBodyLimit::disable()),
        },
    ]
}

/// Files stored for a request not yet committed: deleted when dropped unless kept, so a
/// refusal, a failed write or a client gone mid-request leaves no file behind.
struct Stored {
    uploads: Uploads,
    keys: Vec<String>,
}

impl Stored {
    fn keep(mut self) -> Vec<String> {
        std::mem::take(&mut self.keys)
    }
}

impl Drop for Stored {
    fn drop(&mut self) {
        if self.keys.is_empty() {
            return;
        }
        let keys = std::mem::take(&mut self.keys);
        let uploads = self.uploads.clone();
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move { uploads.delete_quietly(&keys).await });
        }
    }
}

/// What reading an upload form gave: its text fields, the files stored, and whether an
/// `upload` field came without a file.
struct Received {
    params: Params,
    stored: Stored,
    empty_upload_field: bool,
}

/// Reads the form, storing each file as it completes. `existing` documents count against the
/// limit. On a refusal the rest of the body is read (and dropped) before answering.
async fn receive(app: &ResourceState, user: &UserRow, request: Request) -> ApiResult<Received> {
    let settings = &app.settings.uploads;
    let mut form = Form::read(request, settings.max_request_bytes()).await?;
    let mut stored = Stored {
        uploads: app.uploads.clone(),
        keys: Vec::new(),
    };
    let result = read_files(app, user, &mut form, &mut stored).await;
    match result {
        Ok(empty_upload_field) => Ok(Received {
            params: form.params().clone(),
            stored,
            empty_upload_field,
        }),
        Err(err) => {
            form.drain().await;
            Err(err)
        }
    }
}

async fn read_files(
    app: &ResourceState,
    user: &UserRow,
    form: &mut Form,
    stored: &mut Stored,
) -> ApiResult<bool> {
    let settings = &app.settings.uploads;
    let limit = settings.doc_num_limit;
    let existing = {
        let client = app.store.client().await?;
        documents::count(&client, user.id).await? as usize
    };
    // Barong: `count <= limit`, so only a limit lowered below what users hold refuses here.
    if existing > limit {
        return Err(ApiError::bad_request("resource.documents.limit_reached"));
    }
    let mut empty_upload_field = false;
    while let Some(part) = form.next_part().await? {
        let Some(mut file) = part.file().await? else {
            continue;
        };
        if file.name != "upload" && file.name != "upload[]" {
            file.skip().await?;
            continue;
        }
        // A browser sends the field with an empty file name when no file was chosen.
        if file.filename.is_empty() {
            empty_upload_field = true;
            file.skip().await?;
            continue;
        }
        if existing + stored.keys.len() >= limit {
            return Err(ApiError::bad_request(
                "resource.documents.limit_will_be_reached",
            ));
        }
        let (kind, bytes) = read_file(&mut file, settings).await?;
        let key = Uploads::new_key(&user.uid, kind.extension());
        app.uploads.put(&key, bytes).await?;
        stored.keys.push(key);
    }
    Ok(empty_upload_field)
}

/// One file, checked while it is read: a whitelisted extension, no larger than the maximum
/// (reading stops at the first byte over it), at least the minimum, and content of the type
/// the extension names.
async fn read_file(
    file: &mut FilePart<'_>,
    settings: &crate::config::Uploads,
) -> ApiResult<(FileKind, Bytes)> {
    let kind = rules::extension_of(&file.filename)
        .filter(|ext| settings.extension_whitelist.contains(ext))
        .and_then(|ext| FileKind::from_extension(&ext))
        .ok_or_else(|| ApiError::unprocessable("upload.invalid_extension"))?;
    let max = settings.max_size_bytes();
    let mut bytes = BytesMut::new();
    while let Some(chunk) = file.chunk().await? {
        if bytes.len() + chunk.len() > max {
            return Err(ApiError::unprocessable("upload.too_large"));
        }
        bytes.extend_from_slice(&chunk);
    }
    if bytes.is_empty() {
        return Err(ApiError::unprocessable("upload.empty"));
    }
    if bytes.len() < settings.min_size_bytes {
        return Err(ApiError::unprocessable("upload.too_small"));
    }
    if !kind.matches(&bytes) {
        return Err(ApiError::unprocessable("upload.content_mismatch"));
    }
    Ok((kind, bytes.freeze()))
}

/// Grape's `requires`: absent → `missing_<name>` (and `empty_<name>` unless blank is
/// allowed), blank → `empty_<name>`.
fn required(
    params: &Params,
    prefix: &str,
    name: &str,
    allow_blank: bool,
    codes: &mut Vec<String>,
) -> Option<String> {
    match params.text(name) {
        None => {
            codes.push(format!("{prefix}.missing_{name}"));
            if !allow_blank {
                codes.push(format!("{prefix}.empty_{name}"));
            }
            None
        }
        Some(value) if !allow_blank && value.trim().is_empty() => {
            codes.push(format!("{prefix}.empty_{name}"));
            None
        }
        Some(value) => Some(value),
    }
}

/// `upload` among the required parameters: no file at all is `missing_upload`, the field
/// without a file (or as text) `empty_upload`.
fn upload_codes(received: &Received, prefix: &str, codes: &mut Vec<String>) {
    if received.stored.keys.is_empty() {
        if received.empty_upload_field || received.params.has("upload") {
            codes.push(format!("{prefix}.empty_upload"));
        } else {
            codes.push(format!("{prefix}.missing_upload"));
        }
    }
}

/// The text fields of `POST /documents`, checked in Barong's order.
struct DocumentFields {
    doc_type: String,
    doc_number: String,
    doc_expire: Option<time::Date>,
    doc_category: Option<String>,
    identificator: String,
    metadata: Option<String>,
}

fn document_fields(received: &Received, required_expire: bool) -> ApiResult<DocumentFields> {
    const PREFIX: &str = "resource.document";
    let params = &received.params;
    let mut codes = Vec::new();
    let doc_type = required(params, PREFIX, "doc_type", false, &mut codes);
    let doc_number = required(params, PREFIX, "doc_number", false, &mut codes);
    upload_codes(received, PREFIX, &mut codes);
    let (Some(doc_type), Some(doc_number)) = (doc_type, doc_number) else {
        return Err(ApiError::many(StatusCode::UNPROCESSABLE_ENTITY, codes));
    };
    ApiError::unprocessable_all(codes)?;
    let today = time::OffsetDateTime::now_utc().date();
    let doc_expire =
        rules::check_expire(params.text("doc_expire").as_deref(), required_expire, today)
            .map_err(ApiError::unprocessable)?;
    let mut codes = Vec::new();
    if !rules::DOC_TYPES.contains(&doc_type.as_str()) {
        codes.push("doc_type.inclusion".to_string());
    }
    if doc_number.chars().count() > rules::MAX_DOC_NUMBER {
        codes.push("doc_number.too_long".to_string());
    } else if !rules::valid_doc_number(&doc_number) {
        codes.push("doc_number.invalid".to_string());
    }
    let doc_category = params.filled("doc_category");
    if doc_category
        .as_deref()
        .is_some_and(|c| !rules::CATEGORIES.contains(&c))
    {
        codes.push("doc_category.inclusion".to_string());
    }
    let identificator = params.filled("identificator");
    if identificator
        .as_deref()
        .is_some_and(|i| !rules::valid_identificator(i))
    {
        codes.push("identificator.invalid".to_string());
    }
    let metadata = params.filled("metadata");
    if metadata.as_deref().is_some_and(|m| {
        !matches!(
            serde_json::from_str::<serde_json::Value>(m),
            Ok(serde_json::Value::Object(_))
        )
    }) {
        codes.push("metadata.invalid_format".to_string());
    }
    ApiError::unprocessable_all(codes)?;
    Ok(DocumentFields {
        doc_type,
        doc_number,
        doc_expire,
        doc_category,
        identificator: identificator.unwrap_or_else(crate::crypto::random_hex::<16>),
        metadata,
    })
}

/// The event record of a new document: the number in clear, as Barong's is.
async fn document_created<C: Db>(
    app: &ResourceState,
    c: &C,
    user: &UserRow,
    row: &DocumentRow,
) -> Result<(), StoreError> {
    let mut record = serde_json::to_value(Document::from_row(
        row,
        &app.secrets,
        &app.settings.api.mount,
        false,
    ))
    .unwrap_or_default();
    record["user"] = crate::events::user_record_of(c, user).await?;
    app.events
        .emit(c, "model.document.created", &json!({ "record": record }))
        .await
}

/// Sets the private label `key: pending` and records its change.
async fn pending<C: Db>(
    app: &ResourceState,
    c: &C,
    user: &UserRow,
    key: &str,
) -> Result<(), StoreError> {
    let change = labels::set(c, &app.settings.users, user.id, key, "pending", "private").await?;
    app.events.label_changed(c, &change).await
}

fn created(app: &ResourceState, rows: &[DocumentRow]) -> Response {
    let body: Vec<Document> = rows
        .iter()
        .map(|row| Document::from_row(row, &app.secrets, &app.settings.api.mount, true))
        .collect();
    (StatusCode::CREATED, axum::Json(body)).into_response()
}

async fn create(
    State(app): State<ResourceState>,
    CurrentUser(user): CurrentUser,
    request: Request,
) -> ApiResult<Response> {
    let received = receive(&app, &user, request).await?;
    let fields = document_fields(&received, app.settings.uploads.required_docs_expire)?;
    let number = fields.doc_number.as_str();
    let sealed_number = app.secrets.seal(contexts::DOC_NUMBER, number.as_bytes());
    let number_index = app
        .secrets
        .blind_index(contexts::DOC_NUMBER, number.as_bytes());
    let mut client = app.store.client().await?;
    let tx = client.transaction().await.map_err(StoreError::from)?;
    let mut rows = Vec::new();
    for key in &received.stored.keys {
        let row = documents::insert(
            &tx,
            user.id,
            &DocumentWrite {
                upload: key,
                doc_type: &fields.doc_type,
                doc_number_encrypted: Some(&sealed_number),
                doc_number_index: Some(&number_index),
                doc_expire: fields.doc_expire,
                doc_category: fields.doc_category.as_deref(),
                identificator: &fields.identificator,
                metadata: fields.metadata.as_deref(),
                address_encrypted: None,
            },
        )
        .await?;
        document_created(&app, &tx, &user, &row).await?;
        rows.push(row);
    }
    let is_address = fields.doc_type == rules::ADDRESS;
    match app.settings.kyc.provider {
        KycProvider::Local if !is_address => pending(&app, &tx, &user, "document").await?,
        KycProvider::Local => {}
        // KYCAID verifies a batch once it is complete: the label and the job come with the
        // file that completes it (Barong's `KycService.document_step`).
        KycProvider::Kycaid => {
            if let Some(size) = rules::batch_size(&fields.doc_type) {
                let after = documents::count_in_batch(
                    &tx,
                    user.id,
                    &fields.identificator,
                    &fields.doc_type,
                )
                .await? as usize;
                let before = after - rows.len();
                if before < size && after >= size {
                    pending(&app, &tx, &user, "document").await?;
                    let job = KycJob::Documents {
                        identificator: fields.identificator.clone(),
                    };
                    kyc_jobs::enqueue(&tx, user.id, &job).await?;
                }
            }
        }
    }
    tx.commit().await.map_err(StoreError::from)?;
    received.stored.keep();
    app.committed(&user.uid);
    Ok(created(&app, &rows))
}

async fn create_address(
    State(app): State<ResourceState>,
    CurrentUser(user): CurrentUser,
    request: Request,
) -> ApiResult<Response> {
    const PREFIX: &str = "resource.address";
    let received = receive(&app, &user, request).await?;
    let params = &received.params;
    let mut codes = Vec::new();
    let country = required(params, PREFIX, "country", false, &mut codes);
    let address = required(params, PREFIX, "address", false, &mut codes);
    let city = required(params, PREFIX, "city", true, &mut codes);
    let postcode = required(params, PREFIX, "postcode", true, &mut codes);
    upload_codes(&received, PREFIX, &mut codes);
    ApiError::unprocessable_all(codes)?;
    let fields = [
        ("country", country.unwrap_or_default()),
        ("address", address.unwrap_or_default()),
        ("city", city.unwrap_or_default()),
        ("postcode", postcode.unwrap_or_default()),
    ];
    let codes = fields
        .iter()
        .filter(|(_, value)| value.chars().count() > MAX_ADDRESS_FIELD)
        .map(|(name, _)| format!("{name}.too_long"))
        .collect();
    ApiError::unprocessable_all(codes)?;
    let details: serde_json::Map<String, serde_json::Value> = fields
        .iter()
        .map(|(name, value)| (name.to_string(), json!(value.trim())))
        .collect();
    let sealed = app.secrets.seal(
        contexts::DOC_ADDRESS,
        serde_json::Value::Object(details).to_string().as_bytes(),
    );
    let identificator = crate::crypto::random_hex::<16>();
    let mut client = app.store.client().await?;
    let tx = client.transaction().await.map_err(StoreError::from)?;
    let mut rows = Vec::new();
    for key in &received.stored.keys {
        let row = documents::insert(
            &tx,
            user.id,
            &DocumentWrite {
                upload: key,
                doc_type: rules::ADDRESS,
                doc_number_encrypted: None,
                doc_number_index: None,
                doc_expire: None,
                doc_category: None,
                identificator: &identificator,
                metadata: None,
                address_encrypted: Some(&sealed),
            },
        )
        .await?;
        document_created(&app, &tx, &user, &row).await?;
        rows.push(row);
    }
    pending(&app, &tx, &user, "address").await?;
    if app.settings.kyc.provider == KycProvider::Kycaid {
        kyc_jobs::enqueue(&tx, user.id, &KycJob::Address { identificator }).await?;
    }
    tx.commit().await.map_err(StoreError::from)?;
    received.stored.keep();
    app.committed(&user.uid);
    Ok(created(&app, &rows))
}

async fn list(
    State(app): State<ResourceState>,
    CurrentUser(user): CurrentUser,
) -> ApiResult<Response> {
    let client = app.store.client().await?;
    let rows = documents::of_user(&client, user.id).await?;
    let body: Vec<Document> = rows
        .iter()
        .map(|row| Document::from_row(row, &app.secrets, &app.settings.api.mount, true))
        .collect();
    Ok((StatusCode::OK, axum::Json(body)).into_response())
}

async fn download(
    State(app): State<ResourceState>,
    CurrentUser(user): CurrentUser,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    let not_found = || ApiError::not_found("record.not_found");
    let id: i64 = id.parse().map_err(|_| not_found())?;
    let file = crate::services::documents::file(&app.store, &app.uploads, id, Some(user.id))
        .await?
        .ok_or_else(not_found)?;
    Ok(file_response(file))
}

/// A document's file as an answer: its type, served as an attachment under a name of ours
/// (the client's file name is not kept), never sniffed or cached by the way. The admin API
/// answers with the same.
pub fn file_response(file: crate::services::documents::DocumentFile) -> Response {
    use futures_util::TryStreamExt;
    let body = Body::from_stream(file.object.chunks.map_err(std::io::Error::other));
    let disposition = format!(
        "attachment; filename=\"document-{}.{}\"",
        file.document.id,
        file.kind.extension()
    );
    let mut response = (StatusCode::OK, body).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(file.kind.content_type()),
    );
    if let Ok(value) = HeaderValue::from_str(&disposition) {
        headers.insert(header::CONTENT_DISPOSITION, value);
    }
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(file.object.size));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, no-store"),
    );
    response
}
