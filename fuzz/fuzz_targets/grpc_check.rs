//! gRPC ext_authz CheckRequests from outside: decoding must refuse or read, never panic, and
//! whatever it reads must be usable as headers.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(check) = portcullis::fronts::grpc::decode_check(data.to_vec().into()) {
        for (name, value) in &check.headers {
            assert!(!name.as_str().starts_with(':'));
            let _ = value.to_str();
        }
    }
});
