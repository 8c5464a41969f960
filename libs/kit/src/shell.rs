//! The shell every service with its own database and Redis wraps around its routes: the
//! `Application` alias and [`ServiceState`] declaration ([`crate::service_state!`]), and its
//! router — the routes on its state in the shared stack, with the health endpoints. Builds
//! values only; nothing here does I/O until it is served.

use std::{ops::Deref, sync::Arc};

use axum::{Router, extract::FromRef};

use crate::{
    config::Common,
    health::Health,
    http::{StackOptions, stack},
    service::ServiceState,
};

/// Declares a service's `Application` (its state bound to its listen address) and the
/// [`ServiceState`] impl of its state from its name, migrations, config and error type;
/// connecting and serving are the state's own inherent `connect` and `serve`:
///
/// ```text
/// payplane_kit::service_state!(AppState, "admin", MIGRATOR, Config, StartError);
///
/// impl AppState {
///     async fn connect(config: Config) -> Result<Self, StartError> { … }
///     async fn serve(bound: Application) -> Result<(), StartError> { … }
/// }
/// ```
///
/// A macro because a trait impl's associated consts and types cannot be supplied by a function
/// or a generic, and these four are the same declaration in every service.
#[macro_export]
macro_rules! service_state {
    ($state:ty, $name:literal, $migrator:path, $config:ty, $error:ty $(,)?) => {
        /// A bound, ready-to-run service (`local_addr`, `state`, `shutdown_token`).
        pub type Application = $crate::server::Bound<$state>;

        impl $crate::service::ServiceState for $state {
            const NAME: &'static str = $name;
            const MIGRATOR: ::std::option::Option<&'static $crate::service::Migrator> =
                ::std::option::Option::Some(&$migrator);
            type Config = $config;
            type Error = $error;

            fn connect(
                config: $config,
            ) -> impl ::std::future::Future<Output = ::std::result::Result<Self, $error>> + Send
            {
                <$state>::connect(config)
            }

            fn serve(
                bound: Application,
            ) -> impl ::std::future::Future<Output = ::std::result::Result<(), $error>> + Send {
                <$state>::serve(bound)
            }
        }
    };
}

/// `routes` on `state` in the shared stack answering `health`, believing `X-Forwarded-For`
/// from the config's trusted proxies only, with bodies up to `body_limit` (`None`: the
/// stack's default).
pub fn router<S>(routes: Router<S>, state: S, health: Health, body_limit: Option<usize>) -> Router
where
    S: ServiceState + Clone + Send + Sync,
    S::Config: Deref<Target = Common>,
    Arc<S::Config>: FromRef<S>,
{
    let config = Arc::<S::Config>::from_ref(&state);
    let mut opts = StackOptions::trusting(config.trusted_proxies.clone());
    if let Some(limit) = body_limit {
        opts.body_limit = limit;
    }
    stack(routes.with_state(state), health, &opts)
}
