//! The AWS SDK interceptor: a subsegment for each SDK operation.

use super::{AwsCall, Daemon, Flags, Input, Open, daemon};
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::interceptors::context::{
    BeforeSerializationInterceptorContextRef, FinalizerInterceptorContextRef,
};
use aws_smithy_runtime_api::client::orchestrator::Metadata;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::{ConfigBag, Storable, StoreReplace};
/// The AWS SDK interceptor that gives each operation a subsegment (namespace `aws`, with the
/// operation and, for DynamoDB, the table), from its start to its end with retries.
#[derive(Clone, Copy, Debug)]
pub struct SdkCalls {
    pub(super) daemon: fn() -> Option<&'static Daemon>,
    /// The table an operation's input names, for a service with tables (the DynamoDB adapter
    /// reads its own inputs; this crate knows no SDK's types).
    pub(super) table_of: fn(&Input) -> Option<String>,
}

impl Default for SdkCalls {
    /// Subsegments sent to the process's daemon, naming no table.
    fn default() -> Self {
        Self {
            daemon,
            table_of: |_| None,
        }
    }
}

/// An operation's subsegment, kept in the operation's config bag between its hooks.
#[derive(Clone, Debug)]
struct SdkCall(Open);

impl Storable for SdkCall {
    type Storer = StoreReplace<Self>;
}

impl SdkCalls {
    /// Subsegments that name the table each operation's input names, as `table_of` reads it.
    pub fn naming_tables(table_of: fn(&Input) -> Option<String>) -> Self {
        Self {
            table_of,
            ..Self::default()
        }
    }
}

impl Intercept for SdkCalls {
    fn name(&self) -> &'static str {
        "XRaySubsegments"
    }

    // The operation's name is in the bag from here on (not yet when a client's
    // `read_before_execution` runs).
    fn read_before_serialization(
        &self,
        context: &BeforeSerializationInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let Some(metadata) = cfg.load::<Metadata>() else {
            return Ok(());
        };
        let service = metadata.service().to_string();
        if let Some(mut open) = Open::begin_sent_to(self.daemon, service, "aws") {
            open.subsegment.aws = Some(AwsCall {
                operation: metadata.name().to_string(),
                table_name: (self.table_of)(context.input()),
                request_id: None,
            });
            cfg.interceptor_state().store_put(SdkCall(open));
        }
        Ok(())
    }

    fn read_after_execution(
        &self,
        context: &FinalizerInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let Some(SdkCall(mut open)) = cfg.load::<SdkCall>().cloned() else {
            return Ok(());
        };
        let response = context.response();
        if let Some(aws) = open.subsegment.aws.as_mut() {
            aws.request_id = response
                .and_then(|r| r.headers().get("x-amzn-requestid"))
                .map(str::to_string);
        }
        open.end(Flags::of_status(response.map(|r| r.status().as_u16())));
        Ok(())
    }
}
