//! Upload forms (`multipart/form-data`) read as a stream: text fields are gathered into
//! [`Params`] as they pass, each file is handed over as it arrives, chunk by chunk, so the
//! handler enforces its limits while reading and never holds more than one file. The whole
//! body is capped by the caller's limit (the route turns the server's smaller default off,
//! see `resource::documents`). A body of another type is read as [`Params`] (no files), so a
//! JSON or form request without files gets the usual `missing_*` codes rather than a 415.

use axum::body::{Body, Bytes};
use axum::extract::multipart::{Field, MultipartError};
use axum::extract::{FromRequest, Multipart, Request};
use http::StatusCode;
use http::header::CONTENT_TYPE;
use serde_json::Value;

use super::error::{ApiError, ApiResult};
use super::params::Params;

/// The longest text field (and the largest body of a request that is not multipart).
const MAX_TEXT: usize = 64 * 1024;

/// An upload form being read.
pub struct Form {
    multipart: Option<Multipart>,
    params: Params,
}

/// A field of the form, not yet read.
pub struct Part<'a> {
    field: Field<'a>,
    params: &'a mut Params,
}

impl<'a> Part<'a> {
    /// The file this field carries; a text field is read into the form's params instead
    /// (`None`). Split from [`Form::next_part`] because a loop that skips text fields cannot
    /// return the borrowed field it stopped at.
    pub async fn file(self) -> ApiResult<Option<FilePart<'a>>> {
        let Part { mut field, params } = self;
        let name = field.name().unwrap_or_default().to_string();
        if let Some(filename) = field.file_name() {
            let filename = filename.to_string();
            return Ok(Some(FilePart {
                name,
                filename,
                field,
            }));
        }
        let mut text = Vec::new();
        while let Some(chunk) = field.chunk().await.map_err(multipart_error)? {
            if text.len() + chunk.len() > MAX_TEXT {
                return Err(too_large());
            }
            text.extend_from_slice(&chunk);
        }
        let text = String::from_utf8(text)
            .map_err(|_| ApiError::bad_request("request.invalid_encoding"))?;
        params.insert(&name, Value::String(text));
        Ok(None)
    }
}

/// A file of the form, being read.
pub struct FilePart<'a> {
    /// The field's name (`upload`, `upload[]`).
    pub name: String,
    /// The client's file name ("" when a browser sent the field with no file chosen).
    pub filename: String,
    field: Field<'a>,
}

impl Form {
    /// Starts reading `request`'s body, at most `max_bytes` of it.
    pub async fn read(request: Request, max_bytes: usize) -> ApiResult<Form> {
        let multipart = request
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.to_ascii_lowercase().starts_with("multipart/form-data"));
        if !multipart {
            let request =
                request.map(|body| Body::new(http_body_util::Limited::new(body, MAX_TEXT)));
            return Ok(Form {
                multipart: None,
                params: Params::from_request(request, &()).await?,
            });
        }
        let params = Params::of_route(&request);
        let request = request.map(|body| Body::new(http_body_util::Limited::new(body, max_bytes)));
        let multipart = Multipart::from_request(request, &())
            .await
            .map_err(|_| ApiError::bad_request("request.invalid_multipart"))?;
        Ok(Form {
            multipart: Some(multipart),
            params,
        })
    }

    /// The next field: a file, or a text field (which [`Part::file`] adds to the params).
    pub async fn next_part(&mut self) -> ApiResult<Option<Part<'_>>> {
        let Some(multipart) = self.multipart.as_mut() else {
            return Ok(None);
        };
        let field = multipart.next_field().await.map_err(multipart_error)?;
        Ok(field.map(|field| Part {
            field,
            params: &mut self.params,
        }))
    }

    /// Reads what is left of the body and drops it, so that a refusal reaches a client still
    /// sending (many clients do not read an answer before they have sent their body). Bounded
    /// by the body limit and the server's body timeouts; errors end it quietly.
    pub async fn drain(&mut self) {
        let Some(multipart) = self.multipart.as_mut() else {
            return;
        };
        while let Ok(Some(mut field)) = multipart.next_field().await {
            while let Ok(Some(_)) = field.chunk().await {}
        }
    }

    /// The text fields read so far (all of them once [`Form::next_part`] answered `None`).
    pub fn params(&self) -> &Params {
        &self.params
    }
}

impl FilePart<'_> {
    /// The next chunk of the file; `None` at its end.
    pub async fn chunk(&mut self) -> ApiResult<Option<Bytes>> {
        self.field.chunk().await.map_err(multipart_error)
    }

    /// Reads the rest of the file and drops it.
    pub async fn skip(&mut self) -> ApiResult<()> {
        while self.chunk().await?.is_some() {}
        Ok(())
    }
}

fn too_large() -> ApiError {
    ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "request.body_too_large")
}

/// Over the limit (413), malformed (400), or the body stopped arriving (408, as
/// `params::body_error` answers).
fn multipart_error(err: MultipartError) -> ApiError {
    match err.status() {
        StatusCode::PAYLOAD_TOO_LARGE => too_large(),
        StatusCode::BAD_REQUEST => ApiError::bad_request("request.invalid_multipart"),
        _ => ApiError::new(StatusCode::REQUEST_TIMEOUT, "request.timeout"),
    }
}
