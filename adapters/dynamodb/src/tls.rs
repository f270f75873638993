//! TLS for the AWS SDK clients the functions build: rustls over ring, a crypto backend of Rust
//! and assembly with no C library to build or cross-compile (aws-lc-rs and its post-quantum key
//! exchange are weighed in docs/operations.md#tls). reqwest and Pulsar take the process's rustls
//! provider: [`install_crypto_provider`].

use aws_smithy_http_client::tls::{Provider, rustls_provider::CryptoMode};
use aws_smithy_runtime_api::client::http::SharedHttpClient;

/// The AWS SDK clients' HTTPS client.
pub fn aws_https_client() -> SharedHttpClient {
    aws_smithy_http_client::Builder::new()
        .tls_provider(Provider::Rustls(CryptoMode::Ring))
        .build_https()
}

/// Makes ring the process's rustls crypto provider, which reqwest's and Pulsar's TLS
/// configurations take. Idempotent.
///
/// rustls 0.23.48 deprecates its ring provider because ring has no post-quantum key exchange
/// (aws-lc-rs has X25519MLKEM768); the choice is weighed in docs/operations.md#tls.
#[allow(deprecated)]
pub fn install_crypto_provider() {
    // An error only says that a provider is installed already: ring, the only one built in.
    let _ = rustls::crypto::ring::default_provider().install_default();
}

#[cfg(test)]
mod tests {
    use rustls::crypto::{CryptoProvider, ring};

    #[test]
    #[allow(deprecated)] // ring's provider: see install_crypto_provider.
    fn ring_becomes_the_process_provider_and_the_sdk_client_builds_over_it() {
        super::install_crypto_provider();
        super::install_crypto_provider();
        let installed = CryptoProvider::get_default().expect("a provider is installed");
        let suites = |p: &CryptoProvider| {
            p.cipher_suites
                .iter()
                .map(|s| s.suite())
                .collect::<Vec<_>>()
        };
        assert_eq!(suites(installed), suites(&ring::default_provider()));
        let _ = super::aws_https_client();
    }
}
