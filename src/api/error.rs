//! The API's one error type, rendered as Barong renders errors: `{"errors":["<code>", ...]}`.

use axum::Json;
use axum::response::{IntoResponse, Response};
use http::{HeaderValue, StatusCode};

use crate::authn::captcha::CaptchaError;
use crate::kv::KvError;
use crate::services::accounts::AccountError;
use crate::store::StoreError;

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub codes: Vec<String>,
    pub retry_after: Option<u64>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: impl Into<String>) -> ApiError {
        ApiError {
            status,
            codes: vec![code.into()],
            retry_after: None,
        }
    }

    pub fn many(status: StatusCode, codes: Vec<String>) -> ApiError {
        ApiError {
            status,
            codes,
            retry_after: None,
        }
    }

    pub fn unprocessable(code: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, code)
    }

    pub fn unauthorized(code: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::UNAUTHORIZED, code)
    }

    pub fn not_found(code: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, code)
    }

    pub fn bad_request(code: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, code)
    }

    pub fn too_many(code: impl Into<String>, retry_after: u64) -> ApiError {
        ApiError {
            status: StatusCode::TOO_MANY_REQUESTS,
            codes: vec![code.into()],
            retry_after: Some(retry_after),
        }
    }

    /// A dependency could not answer: the request fails closed.
    pub fn unavailable() -> ApiError {
        ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "server.unavailable")
    }

    pub fn internal() -> ApiError {
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "server.internal_error")
    }
}

impl From<StoreError> for ApiError {
    fn from(err: StoreError) -> ApiError {
        match err {
            StoreError::Unavailable(e) => {
                tracing::warn!(error = %e, "database unavailable");
                ApiError::unavailable()
            }
            // The last line of defence against a NUL reaching the database; handlers that
            // check their parameters answer with their own code first.
            StoreError::BadText => ApiError::unprocessable("params.invalid_character"),
            other => {
                tracing::error!(error = %other, "database error");
                ApiError::internal()
            }
        }
    }
}

/// Object storage could not take or give a file: fail closed, as for the database.
impl From<crate::uploads::UploadError> for ApiError {
    fn from(err: crate::uploads::UploadError) -> ApiError {
        tracing::warn!(error = %err, "object storage unavailable");
        ApiError::unavailable()
    }
}

impl From<crate::services::documents::FileError> for ApiError {
    fn from(err: crate::services::documents::FileError) -> ApiError {
        use crate::services::documents::FileError;
        match err {
            FileError::Store(err) => err.into(),
            FileError::Upload(err) => err.into(),
        }
    }
}

impl From<crate::services::backoffice::TokenError> for ApiError {
    fn from(err: crate::services::backoffice::TokenError) -> ApiError {
        use crate::services::backoffice::TokenError;
        match err {
            TokenError::Store(err) => err.into(),
            TokenError::Kv(err) => err.into(),
        }
    }
}

impl From<KvError> for ApiError {
    fn from(err: KvError) -> ApiError {
        tracing::warn!(error = %err, "redis unavailable");
        ApiError::unavailable()
    }
}

/// Every refusal of an account is unprocessable, with all its codes.
impl From<AccountError> for ApiError {
    fn from(err: AccountError) -> ApiError {
        match err {
            AccountError::Refused(codes) => ApiError::many(StatusCode::UNPROCESSABLE_ENTITY, codes),
            AccountError::Taken(code) => ApiError::unprocessable(code),
            AccountError::Store(err) => err.into(),
        }
    }
}

/// Barong's statuses: a missing answer or field is a bad request, a wrong answer unprocessable.
impl From<CaptchaError> for ApiError {
    fn from(err: CaptchaError) -> ApiError {
        let status = match err {
            CaptchaError::Required | CaptchaError::MandatoryFields => StatusCode::BAD_REQUEST,
            CaptchaError::VerificationFailed => StatusCode::UNPROCESSABLE_ENTITY,
        };
        ApiError::new(status, err.code())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = (
            self.status,
            Json(serde_json::json!({ "errors": self.codes })),
        )
            .into_response();
        if let Some(seconds) = self.retry_after {
            response
                .headers_mut()
                .insert(http::header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        response
    }
}

pub type ApiResult<T> = Result<T, ApiError>;

impl ApiError {
    /// Nothing refused, or one 422 with every model code (Grape reports them together).
    pub fn unprocessable_all(codes: Vec<String>) -> ApiResult<()> {
        if codes.is_empty() {
            Ok(())
        } else {
            Err(ApiError::many(StatusCode::UNPROCESSABLE_ENTITY, codes))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn captcha_refusals_keep_barongs_statuses() {
        for (err, status) in [
            (CaptchaError::Required, StatusCode::BAD_REQUEST),
            (CaptchaError::MandatoryFields, StatusCode::BAD_REQUEST),
            (
                CaptchaError::VerificationFailed,
                StatusCode::UNPROCESSABLE_ENTITY,
            ),
        ] {
            let api = ApiError::from(err);
            assert_eq!(
                (api.status, api.codes),
                (status, vec![err.code().to_string()])
            );
        }
    }
}
